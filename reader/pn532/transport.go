package pn532

import (
	"context"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// transport moves frames between the host and the chip over one bus.
type transport interface {
	// write sends a frame (a command, ACK or NACK) to the chip.
	write(frame []byte) error
	// readAck reads the chip's ACK (or NACK) frame for the last command.
	readAck(ctx context.Context, deadline time.Time) ([]byte, error)
	// readFrame reads the chip's next frame, at least up to its DCS.
	readFrame(ctx context.Context, deadline time.Time) ([]byte, error)
	// wake prepares the bus for the first command after power-up, reset or
	// PowerDown.
	wake()
	// flush drops whatever the chip sent that was not read yet.
	flush()
}

// statusBus is a bus where the host asks whether the chip is ready before
// reading it (SPI and I2C).
type statusBus interface {
	write(b []byte) error
	// ready reports the chip's ready status.
	ready() (bool, error)
	// read reads n frame bytes from a chip that is ready.
	read(n int) ([]byte, error)
}

// statusPoll is the pause between two status reads when no IRQ line is
// wired.
const statusPoll = time.Millisecond

// headerLen is how much of a frame the polled transport reads first: the
// preamble, start code and lengths of every frame, and the whole of an
// ACK, NACK or error frame.
const headerLen = 8

// polled is the transport over a statusBus, with an optional IRQ line that
// replaces the status reads.
//
// The chip's frame length is only known after its header, and a periph bus
// transfer has a fixed length, so a frame is read in two transfers: the
// header, then (after a NACK that asks the chip to send its last frame
// again) the whole frame.
type polled struct {
	bus statusBus
	irq gpio.PinIn
}

func (p *polled) write(frame []byte) error { return p.bus.write(frame) }
func (p *polled) wake()                    {}
func (p *polled) flush()                   {}

func (p *polled) readAck(ctx context.Context, deadline time.Time) ([]byte, error) {
	if err := p.waitReady(ctx, deadline); err != nil {
		return nil, err
	}
	return p.bus.read(len(ackFrame))
}

func (p *polled) readFrame(ctx context.Context, deadline time.Time) ([]byte, error) {
	if err := p.waitReady(ctx, deadline); err != nil {
		return nil, err
	}
	hdr, err := p.bus.read(headerLen)
	if err != nil {
		return nil, err
	}
	h, err := parseHeader(hdr)
	if err != nil {
		return nil, err
	}
	if h.end <= len(hdr) {
		return hdr[:h.end], nil
	}
	if err := p.bus.write(nackFrame); err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, deadline); err != nil {
		return nil, err
	}
	return p.bus.read(h.end + 1) // with the postamble
}

// waitReady waits until the chip has a frame for the host.
func (p *polled) waitReady(ctx context.Context, deadline time.Time) error {
	for {
		if p.irq != nil {
			if p.irq.Read() == gpio.Low {
				return nil
			}
		} else if ok, err := p.bus.ready(); err != nil || ok {
			return err
		}
		left := time.Until(deadline)
		if err := expired(ctx, left); err != nil {
			return err
		}
		if p.irq != nil {
			p.irq.WaitForEdge(min(left, 10*time.Millisecond))
		} else {
			time.Sleep(min(left, statusPoll))
		}
	}
}

// expired returns the error for a wait that has left time to go: the
// context's error, context.DeadlineExceeded when the deadline came from ctx,
// or ErrTimeout.
func expired(ctx context.Context, left time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if left > 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return ErrTimeout
}
