package pn532

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.bug.st/serial"
)

// UARTPort is the serial port a PN532 in HSU mode sits on (115200 8N1).
// go.bug.st/serial's Port satisfies it; tests use a fake.
type UARTPort interface {
	// Read reads what has arrived, waiting at most the read timeout; it
	// returns 0, nil when nothing arrived in time.
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	// SetReadTimeout sets the longest wait of Read.
	SetReadTimeout(t time.Duration) error
	// ResetInputBuffer drops the received bytes not read yet.
	ResetInputBuffer() error
}

// wakePreamble wakes an HSU PN532 up after power-up, reset or PowerDown; it
// goes before the first command.
var wakePreamble = []byte{0x55, 0x55, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}

// uartReadSlice bounds one Read so that a cancelled context is noticed.
const uartReadSlice = 20 * time.Millisecond

// NewUART returns a PN532 on a serial port already set to 115200 8N1. The
// caller keeps ownership of the port. A nil opts means DefaultOptions().
func NewUART(p UARTPort, opts *Options) (*Dev, error) {
	return newDev(&uart{p: p, asleep: true}, opts.withDefaults())
}

// OpenUART opens the serial device at path (e.g. /dev/serial0) at 115200
// 8N1 and returns a PN532 on it. Close closes the port.
func OpenUART(path string, opts *Options) (*Dev, error) {
	p, err := serial.Open(path, &serial.Mode{BaudRate: 115200, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		return nil, fmt.Errorf("pn532: open %s: %w", path, err)
	}
	d, err := NewUART(p, opts)
	if err != nil {
		return nil, errors.Join(err, p.Close())
	}
	d.closer = p
	return d, nil
}

// uart is the HSU transport: frames flow as a byte stream.
type uart struct {
	p      UARTPort
	asleep bool   // send the wake-up preamble before the next frame
	buf    []byte // bytes received and not consumed yet
}

func (u *uart) write(frame []byte) error {
	if u.asleep {
		frame = append(append([]byte(nil), wakePreamble...), frame...)
	}
	for len(frame) > 0 {
		n, err := u.p.Write(frame)
		if err != nil {
			return fmt.Errorf("uart: %w", err)
		}
		frame = frame[n:]
	}
	u.asleep = false
	return nil
}

func (u *uart) wake() { u.asleep = true }

func (u *uart) flush() {
	u.buf = nil
	_ = u.p.ResetInputBuffer() // best effort: stale bytes are skipped anyway
}

func (u *uart) readAck(ctx context.Context, deadline time.Time) ([]byte, error) {
	return u.readFrame(ctx, deadline)
}

// readFrame returns the next frame up to its DCS; bytes before a start code
// (postambles, noise) are skipped.
func (u *uart) readFrame(ctx context.Context, deadline time.Time) ([]byte, error) {
	for {
		h, err := parseHeader(u.buf)
		switch {
		case errors.Is(err, errNoStart):
			u.buf = u.buf[1:]
			continue
		case errors.Is(err, errShort) || err == nil && len(u.buf) < h.end:
			if err := u.fill(ctx, deadline); err != nil {
				return nil, err
			}
			continue
		case err != nil:
			u.buf = nil
			return nil, err
		}
		f := u.buf[:h.end:h.end]
		u.buf = u.buf[h.end:]
		return f, nil
	}
}

// fill reads what the chip sent, waiting until the deadline.
func (u *uart) fill(ctx context.Context, deadline time.Time) error {
	var tmp [64]byte
	for {
		left := time.Until(deadline)
		if err := expired(ctx, left); err != nil {
			return err
		}
		if err := u.p.SetReadTimeout(min(left, uartReadSlice)); err != nil {
			return fmt.Errorf("uart: %w", err)
		}
		n, err := u.p.Read(tmp[:])
		if err != nil {
			return fmt.Errorf("uart: %w", err)
		}
		if n > 0 {
			u.buf = append(u.buf, tmp[:n]...)
			return nil
		}
	}
}
