// Package pn532sim is a fake PN532 for tests. It speaks the chip's frame
// protocol (UM0701-02) on the bus side, as an I2C bus, an SPI port or a
// serial port (HSU), and emulates one 106 kbps type A target: a phone that a
// test places in the field and removes. It can also be told to misbehave,
// so that tests see a driver recover.
//
// The fake chip answers GetFirmwareVersion (32 01 06 07), SAMConfiguration,
// RFConfiguration, InListPassiveTarget, InDataExchange (with chaining both
// ways), InCommunicateThru (recording the frames, never answered by the
// phone), InRelease, Diagnose test 0x06 (presence) and PowerDown; any other
// command gets an error frame.
package pn532sim

import (
	"context"
	"slices"
	"sync"
)

// Phone answers a command APDU. Its context ends when the phone is removed.
// An error makes the target stop answering (status 0x01, timeout).
type Phone func(ctx context.Context, apdu []byte) ([]byte, error)

// Fault is a way for the chip to misbehave.
type Fault int

// Faults.
const (
	// Healthy answers every command.
	Healthy Fault = iota
	// Silent stops answering: no ACK, no response, never ready, until the
	// chip is reset through its RSTPDN pin or Fail(Healthy) is called.
	Silent
	// BadChecksum corrupts the DCS of the next response; a NACK from the
	// host gets a good copy.
	BadChecksum
	// NACK answers the next command with a NACK instead of an ACK.
	NACK
)

// The target the chip reports to InListPassiveTarget: NbTg 1, Tg 1, ATQA
// 0004, SAK 20, a 4-byte random UID and an ATS.
const targetTg = 0x01

var targetList = []byte{0x01, targetTg, 0x00, 0x04, 0x20, 0x04, 0x08, 0x12, 0x34, 0x56, 0x05, 0x78, 0x80, 0x70, 0x02}

const maxData = 262 // longest DataIn of one InDataExchange answer

// outFrame is a frame waiting for the host.
type outFrame struct {
	b       []byte
	corrupt bool // deliver it with a wrong DCS the first time it is read whole
}

// Chip is a fake PN532. Use one bus of it at a time.
type Chip struct {
	mu      sync.Mutex
	out     []outFrame // frames for the host, in order
	last    outFrame   // the last frame read, sent again on a NACK
	avail   chan struct{}
	fault   Fault
	asleep  bool   // HSU: waiting for the wake-up preamble
	uartIn  []byte // HSU: received bytes not yet parsed
	pending []byte // HSU: bytes of the frame being sent

	phone    Phone
	phoneCtx context.Context
	cancel   context.CancelFunc
	active   bool   // the target is activated
	chainIn  []byte // command parts received with the MI bit
	chainOut []byte // answer still to send

	thru [][]byte
	cmds []byte
}

// New returns a fake chip with no phone in the field.
func New() *Chip {
	return &Chip{avail: make(chan struct{}, 1), asleep: true}
}

// Place puts a phone in the field.
func (c *Chip) Place(p Phone) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked()
	c.phone = p
	c.phoneCtx, c.cancel = context.WithCancel(context.Background())
}

// Remove takes the phone out of the field.
func (c *Chip) Remove() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked()
}

func (c *Chip) removeLocked() {
	if c.cancel != nil {
		c.cancel()
	}
	c.phone, c.cancel, c.active, c.chainIn, c.chainOut = nil, nil, false, nil, nil
}

// Fail makes the chip misbehave as f says; Fail(Healthy) ends Silent.
func (c *Chip) Fail(f Fault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fault = f
	if f == Silent {
		c.out, c.pending = nil, nil
	}
}

// Thru returns the frames received by InCommunicateThru, in order.
func (c *Chip) Thru() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.thru)
}

// Commands returns the codes of the commands the chip answered, in order.
func (c *Chip) Commands() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.cmds)
}

// reset is a pulse on RSTPDN: everything starts again, faults are cleared.
func (c *Chip) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out, c.last, c.pending, c.uartIn = nil, outFrame{}, nil, nil
	c.fault, c.asleep, c.active, c.chainIn, c.chainOut = Healthy, true, false, nil, nil
}

// push queues a frame for the host. Called with mu held.
func (c *Chip) push(f outFrame) {
	c.out = append(c.out, f)
	select {
	case c.avail <- struct{}{}:
	default:
	}
}

// ready reports whether a frame waits for the host. Called with mu held.
func (c *Chip) ready() bool { return len(c.out) > 0 && c.fault != Silent }

// pop takes the next frame for a read of n bytes. Called with mu held.
func (c *Chip) pop(n int) []byte {
	f := c.out[0]
	c.out = c.out[1:]
	b := f.b
	if f.corrupt && n >= len(b) {
		b = slices.Clone(b)
		b[len(b)-2]++ // the DCS
		f.corrupt = false
	}
	c.last = f
	return b
}

// receive handles one frame from the host. Called with mu held; it
// releases mu while the phone answers.
func (c *Chip) receive(k kind, data []byte) {
	switch k {
	case kindACK: // abort
		c.out, c.pending = nil, nil
	case kindNACK: // send the last frame again
		if c.last.b != nil {
			c.push(c.last)
		}
	case kindInfo:
		c.command(data)
	}
}

func (c *Chip) command(data []byte) {
	if c.fault == Silent || len(data) < 2 || data[0] != 0xD4 {
		return
	}
	cmd, params := data[1], data[2:]
	if c.fault == NACK {
		c.fault = Healthy
		c.push(outFrame{b: nackFrame})
		return
	}
	c.push(outFrame{b: ackFrame})
	resp, ok := c.respond(cmd, params)
	if !ok {
		c.push(outFrame{b: errorFrame})
		return
	}
	c.cmds = append(c.cmds, cmd)
	c.push(outFrame{b: encode(append([]byte{0xD5, cmd + 1}, resp...)), corrupt: c.fault == BadChecksum})
	if c.fault == BadChecksum {
		c.fault = Healthy
	}
}

func (c *Chip) respond(cmd byte, p []byte) ([]byte, bool) {
	switch cmd {
	case 0x02: // GetFirmwareVersion
		return []byte{0x32, 0x01, 0x06, 0x07}, true
	case 0x14, 0x32: // SAMConfiguration, RFConfiguration
		return nil, true
	case 0x16: // PowerDown
		c.asleep = true
		return []byte{0x00}, true
	case 0x4A: // InListPassiveTarget
		if len(p) < 2 || p[1] != 0x00 || c.phone == nil {
			return []byte{0x00}, true
		}
		c.active, c.chainIn, c.chainOut = true, nil, nil
		return slices.Clone(targetList), true
	case 0x52: // InRelease
		c.active, c.chainIn, c.chainOut = false, nil, nil
		return []byte{0x00}, true
	case 0x42: // InCommunicateThru: nobody answers a raw frame
		c.thru = append(c.thru, slices.Clone(p))
		return []byte{0x01}, true
	case 0x00: // Diagnose
		if len(p) < 1 || p[0] != 0x06 {
			return nil, false
		}
		if c.phone != nil && c.active {
			return []byte{0x00}, true
		}
		return []byte{0x01}, true
	case 0x40: // InDataExchange
		if len(p) < 1 {
			return nil, false
		}
		return c.dataExchange(p[0], p[1:]), true
	}
	return nil, false
}

func (c *Chip) dataExchange(tg byte, data []byte) []byte {
	switch {
	case c.phone == nil:
		return []byte{0x01} // timeout: nobody answers
	case !c.active || tg&0x3F != targetTg:
		return []byte{0x27} // not acceptable in this context
	case len(data) == 0 && c.chainOut != nil:
		return c.answer(c.chainOut)
	case tg&0x40 != 0:
		c.chainIn = append(c.chainIn, data...)
		return []byte{0x00}
	}
	apdu := append(c.chainIn, data...)
	c.chainIn = nil
	phone, ctx := c.phone, c.phoneCtx
	c.mu.Unlock()
	resp, err := phone(ctx, apdu)
	c.mu.Lock()
	if err != nil || c.phone == nil {
		return []byte{0x01}
	}
	return c.answer(resp)
}

// answer returns the next part of resp, with the MI bit when more follows.
func (c *Chip) answer(resp []byte) []byte {
	if len(resp) > maxData {
		c.chainOut = resp[maxData:]
		return append([]byte{0x40}, resp[:maxData]...)
	}
	c.chainOut = nil
	return append([]byte{0x00}, resp...)
}
