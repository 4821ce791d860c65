package pn532

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// maxTries bounds how often a command is sent again after a NACK or a
// garbled ACK, and how often a garbled response is asked for again.
const maxTries = 3

// command runs one command under the command timeout and returns the
// response parameters (after D5 and the response code).
func (d *Dev) command(ctx context.Context, cmd byte, params ...byte) ([]byte, error) {
	deadline := time.Now().Add(d.opts.Timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	return d.exchange(ctx, cmd, params, deadline)
}

// exchange sends a command frame, waits for the chip's ACK and reads its
// response. A NACK or garbled ACK makes it send the command again; a
// garbled response makes it send a NACK so that the chip sends the response
// again. After any other failure (timeout, cancellation, garbage again and
// again) it sends an ACK, which aborts whatever the chip is still doing.
func (d *Dev) exchange(ctx context.Context, cmd byte, params []byte, deadline time.Time) ([]byte, error) {
	req, err := encodeFrame(append([]byte{hostTFI, cmd}, params...))
	if err != nil {
		return nil, fmt.Errorf("pn532: %s: %w", cmdName(cmd), err)
	}
	resp, err := d.roundTrip(ctx, req, deadline)
	if err != nil {
		if !errors.Is(err, ErrApplication) {
			d.abort()
		}
		return nil, fmt.Errorf("pn532: %s: %w", cmdName(cmd), err)
	}
	if len(resp) < 2 || resp[0] != chipTFI || resp[1] != cmd+1 {
		return nil, fmt.Errorf("pn532: %s: %w: not its response", cmdName(cmd), ErrFrame)
	}
	return resp[2:], nil
}

func (d *Dev) roundTrip(ctx context.Context, req []byte, deadline time.Time) ([]byte, error) {
	var err error
	for range maxTries {
		if err = d.t.write(req); err != nil {
			return nil, err
		}
		if err = d.readAck(ctx, deadline); !garbled(err) {
			break
		}
		d.log.Debug("pn532 sends the command again", "err", err)
		d.t.flush()
	}
	if err != nil {
		return nil, err
	}
	for try := 1; ; try++ {
		raw, err := d.t.readFrame(ctx, deadline)
		var kind frameKind
		var data []byte
		if err == nil {
			kind, data, err = decodeFrame(raw)
		}
		if err == nil {
			switch kind {
			case kindInfo:
				return data, nil
			case kindError:
				return nil, ErrApplication
			}
			err = fmt.Errorf("%w: ACK or NACK instead of a response", ErrFrame)
		}
		if !garbled(err) || try == maxTries {
			return nil, err
		}
		d.log.Debug("pn532 asks for the response again", "err", err)
		d.t.flush()
		if err := d.t.write(nackFrame); err != nil {
			return nil, err
		}
	}
}

func (d *Dev) readAck(ctx context.Context, deadline time.Time) error {
	raw, err := d.t.readAck(ctx, deadline)
	if err != nil {
		return err
	}
	kind, _, err := decodeFrame(raw)
	switch {
	case err != nil:
		return err
	case kind == kindNACK:
		return ErrNACK
	case kind != kindACK:
		return fmt.Errorf("%w: expected an ACK", ErrFrame)
	}
	return nil
}

// abort sends an ACK, which makes the chip drop the command in progress.
func (d *Dev) abort() {
	d.t.flush()
	if err := d.t.write(ackFrame); err != nil {
		d.log.Debug("pn532 abort failed", "err", err)
	}
}

// garbled reports errors that another try may cure.
func garbled(err error) bool {
	return errors.Is(err, ErrChecksum) || errors.Is(err, ErrFrame) || errors.Is(err, ErrNACK)
}
