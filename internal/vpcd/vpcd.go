// Package vpcd is the card side of the vsmartcard vpcd protocol: a virtual
// card that plugs into one of the virtual PC/SC readers ("Virtual PCD 00 00",
// "Virtual PCD 00 01") that pcscd's vpcd driver offers. Tests use it to put a
// card into a real pcscd; a simulated phone uses it to answer the daemon's
// APDUs.
//
// The vpcd driver listens on TCP (port 35963 for its first reader, 35964 for
// the second). Connecting inserts the card and closing removes it. Every
// message in either direction is a 2-byte big-endian length followed by that
// many bytes. A 1-byte message from the reader is a control code (power off,
// power on, reset: no reply; get ATR: reply with the ATR); anything longer is
// a command APDU to answer.
//
// The card sets TCP_NODELAY and, on Linux, re-arms TCP_QUICKACK before every
// read: without it the delayed ACK adds about 40 ms to each APDU.
package vpcd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"
)

// BasePort is the TCP port of vpcd's first reader ("Virtual PCD 00 00");
// reader n listens on BasePort+n.
const BasePort = 35963

// Addr returns the loopback address of vpcd reader n (0 or 1 by default).
func Addr(n int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(BasePort+n))
}

// Control is a 1-byte control message from the reader.
type Control byte

// Control codes of the vpcd protocol.
const (
	PowerOff Control = 0x00 // the reader powered the card down
	PowerOn  Control = 0x01 // the reader powered the card up
	Reset    Control = 0x02 // the reader reset the card
	GetATR   Control = 0x04 // the reader asks for the ATR
)

// String names the control code.
func (c Control) String() string {
	switch c {
	case PowerOff:
		return "power off"
	case PowerOn:
		return "power on"
	case Reset:
		return "reset"
	case GetATR:
		return "get ATR"
	}
	return fmt.Sprintf("control %#02x", byte(c))
}

// ErrProtocol reports a message from the reader that breaks the vpcd protocol.
var ErrProtocol = errors.New("vpcd: protocol error")

// defaultATR is a minimal ATR announcing T=1, as contactless readers report
// for ISO 14443-4 cards.
var defaultATR = []byte{0x3B, 0x80, 0x80, 0x01, 0x01}

// Card is a virtual card connected to a vpcd reader. Set its fields before
// calling Serve.
type Card struct {
	// ATR is the answer to the reader's ATR request; nil means 3B 80 80 01 01.
	ATR []byte
	// OnControl, if set, is called from Serve for PowerOff, PowerOn and Reset
	// before the next message is read, so a simulated card can reset its state.
	OnControl func(Control)

	conn *net.TCPConn
}

// Dial connects a card to the vpcd reader at addr (see Addr), which inserts it.
func Dial(ctx context.Context, addr string) (*Card, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("vpcd: dial %s: %w", addr, err)
	}
	tc := conn.(*net.TCPConn)
	if err := tc.SetNoDelay(true); err != nil {
		tc.Close()
		return nil, fmt.Errorf("vpcd: set TCP_NODELAY: %w", err)
	}
	return &Card{conn: tc}, nil
}

// Serve answers the reader until ctx ends, the reader closes the connection
// or Close is called. Each command APDU goes to handler, whose return value
// (data and status word) is sent back; the command slice is the handler's to
// keep. Serve returns nil when the reader or Close ended the connection and
// ctx.Err() when ctx ended. Call Serve from one goroutine at a time.
func (c *Card) Serve(ctx context.Context, handler func(apdu []byte) []byte) error {
	if err := c.conn.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("vpcd: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { c.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	r := bufio.NewReader(quickAckReader{c.conn})
	var hdr [2]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return c.readErr(ctx, err, io.EOF)
		}
		msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(r, msg); err != nil {
			return c.readErr(ctx, err, nil)
		}
		var reply []byte
		switch len(msg) {
		case 0:
			return fmt.Errorf("%w: empty message", ErrProtocol)
		case 1:
			switch ctl := Control(msg[0]); ctl {
			case PowerOff, PowerOn, Reset:
				if c.OnControl != nil {
					c.OnControl(ctl)
				}
				continue
			case GetATR:
				reply = c.ATR
				if reply == nil {
					reply = defaultATR
				}
			default:
				return fmt.Errorf("%w: unknown %v", ErrProtocol, ctl)
			}
		default:
			reply = handler(msg)
		}
		if err := c.write(reply); err != nil {
			return err
		}
	}
}

// readErr turns a failed read into Serve's result: ctx's error when ctx
// ended, nil when the connection was closed cleanly (by the reader, by
// Close, or by a reset when pcscd went away), err otherwise. clean is the
// error that counts as a clean close at this point of a message.
func (c *Card) readErr(ctx context.Context, err, clean error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case clean != nil && errors.Is(err, clean),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET):
		return nil
	}
	return fmt.Errorf("vpcd: read: %w", err)
}

// write sends one message in a single segment.
func (c *Card) write(b []byte) error {
	if len(b) > 0xFFFF {
		return fmt.Errorf("vpcd: response of %d bytes is too long", len(b))
	}
	msg := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(msg, uint16(len(b)))
	copy(msg[2:], b)
	if _, err := c.conn.Write(msg); err != nil {
		return fmt.Errorf("vpcd: write: %w", err)
	}
	return nil
}

// Close disconnects the card, which removes it from the reader. Serve, if
// running, returns nil. Closing twice is harmless.
func (c *Card) Close() error {
	if err := c.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("vpcd: close: %w", err)
	}
	return nil
}

// quickAckReader re-arms TCP_QUICKACK before every read, because the kernel
// clears it again after a while.
type quickAckReader struct{ conn *net.TCPConn }

func (q quickAckReader) Read(p []byte) (int, error) {
	quickAck(q.conn)
	return q.conn.Read(p)
}
