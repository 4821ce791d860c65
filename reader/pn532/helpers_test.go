package pn532

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c/i2ctest"
)

// hx decodes hex bytes separated by spaces.
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func rep(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// Frames from UM0701-02's frame format, written out by hand.
var (
	ack  = hx("00 00 FF 00 FF 00")
	nack = hx("00 00 FF FF 00 00")

	fwCmd  = hx("00 00 FF 02 FE D4 02 2A 00")
	fwResp = hx("00 00 FF 06 FA D5 03 32 01 06 07 E8 00")
)

// i2cIRQ is the I2C traffic of one command when the IRQ line says ready at
// once (no status reads): the command, the ACK, the response header, a NACK
// that asks for the response again, and the whole response. A response
// whose DCS is within the 8 header bytes is read in one go.
func i2cIRQ(cmd, resp []byte) []i2ctest.IO {
	io := []i2ctest.IO{
		{Addr: 0x24, W: cmd},
		{Addr: 0x24, R: cat(hx("01"), ack)},
		{Addr: 0x24, R: cat(hx("01"), resp[:8])},
	}
	if len(resp) <= 9 {
		return io
	}
	return append(io,
		i2ctest.IO{Addr: 0x24, W: nack},
		i2ctest.IO{Addr: 0x24, R: cat(hx("01"), resp)})
}

// i2cPolled is the same without an IRQ line: a status read before each read.
func i2cPolled(cmd, resp []byte) []i2ctest.IO {
	io := []i2ctest.IO{
		{Addr: 0x24, W: cmd},
		{Addr: 0x24, R: hx("01")},
		{Addr: 0x24, R: cat(hx("01"), ack)},
		{Addr: 0x24, R: hx("01")},
		{Addr: 0x24, R: cat(hx("01"), resp[:8])},
	}
	if len(resp) <= 9 {
		return io
	}
	return append(io,
		i2ctest.IO{Addr: 0x24, W: nack},
		i2ctest.IO{Addr: 0x24, R: hx("01")},
		i2ctest.IO{Addr: 0x24, R: cat(hx("01"), resp)})
}

func ops(parts ...[]i2ctest.IO) []i2ctest.IO {
	var all []i2ctest.IO
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// newI2C returns a Dev on a playback of ops, with an IRQ line that is always
// ready when irq is set, and checks at the end that all ops were played.
func newI2C(t *testing.T, irq bool, o Options, traffic []i2ctest.IO) *Dev {
	t.Helper()
	pb := &i2ctest.Playback{Ops: traffic, DontPanic: true}
	if irq {
		o.IRQ = &fakeIRQ{}
	}
	d, err := NewI2C(pb, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pb.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

// fakeIRQ is an IRQ line: low (ready) unless busy is set.
type fakeIRQ struct {
	mu   sync.Mutex
	busy bool
}

func (p *fakeIRQ) setBusy(b bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.busy = b
}

func (p *fakeIRQ) String() string                { return "IRQ" }
func (p *fakeIRQ) Halt() error                   { return nil }
func (p *fakeIRQ) Name() string                  { return "IRQ" }
func (p *fakeIRQ) Number() int                   { return -1 }
func (p *fakeIRQ) Function() string              { return "In" }
func (p *fakeIRQ) In(gpio.Pull, gpio.Edge) error { return nil }
func (p *fakeIRQ) Pull() gpio.Pull               { return gpio.PullUp }
func (p *fakeIRQ) DefaultPull() gpio.Pull        { return gpio.PullUp }
func (p *fakeIRQ) WaitForEdge(t time.Duration) bool {
	time.Sleep(min(t, time.Millisecond))
	return false
}

func (p *fakeIRQ) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return gpio.Level(p.busy) // High while busy
}

// scriptUART is a serial port that expects the host to write the steps'
// bytes in order and answers each with its reply.
type scriptUART struct {
	t       *testing.T
	mu      sync.Mutex
	steps   []uartStep
	written []byte
	rx      []byte
	timeout time.Duration
	flushes int
}

type uartStep struct {
	want, reply []byte
}

func (u *scriptUART) Write(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.written = append(u.written, p...)
	for len(u.steps) > 0 && len(u.written) >= len(u.steps[0].want) {
		s := u.steps[0]
		if !bytes.Equal(u.written[:len(s.want)], s.want) {
			u.t.Errorf("host wrote % X, want % X", u.written, s.want)
			return 0, errScript
		}
		u.written = u.written[len(s.want):]
		u.rx = append(u.rx, s.reply...)
		u.steps = u.steps[1:]
	}
	if len(u.steps) == 0 && len(u.written) > 0 {
		u.t.Errorf("host wrote % X after the script", u.written)
		return 0, errScript
	}
	return len(p), nil
}

func (u *scriptUART) Read(p []byte) (int, error) {
	u.mu.Lock()
	n := copy(p, u.rx)
	u.rx = u.rx[n:]
	timeout := u.timeout
	u.mu.Unlock()
	if n == 0 {
		time.Sleep(min(timeout, time.Millisecond))
	}
	return n, nil
}

func (u *scriptUART) SetReadTimeout(t time.Duration) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.timeout = t
	return nil
}

func (u *scriptUART) ResetInputBuffer() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.rx = nil
	u.flushes++
	return nil
}

// done checks that the host wrote every step.
func (u *scriptUART) done() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.steps) > 0 {
		u.t.Errorf("%d UART steps not played, next % X", len(u.steps), u.steps[0].want)
	}
}

var errScript = errors.New("scriptUART: unexpected write")
