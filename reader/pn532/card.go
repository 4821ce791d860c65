package pn532

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dkvehicled/dkvehicled/reader"
)

// Card is a target activated by the chip. It implements reader.Card.
type Card struct {
	d        *Dev
	target   Target
	session  uint64 // Dev.session when the card was found
	released bool
}

var _ reader.Card = (*Card)(nil)

// Target returns what the chip reported about the target.
func (c *Card) Target() Target { return c.target }

// Transceive sends a command APDU with InDataExchange and returns the
// response APDU, chaining both ways when they are longer than the chip's
// buffer. It waits until ctx's deadline, or Options.LongTimeout when ctx has
// none. A target that stopped answering gives an error matching
// reader.ErrCardGone; a chip that failed one matching reader.ErrUnavailable.
func (c *Card) Transceive(ctx context.Context, command []byte) ([]byte, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.d.opts.LongTimeout)
	}
	c.d.mu.Lock()
	var r []byte
	var err error
	if c.released || c.stale() {
		err = reader.ErrCardGone
	} else {
		r, err = c.d.inDataExchange(ctx, c.target.Tg, command, deadline)
	}
	c.d.mu.Unlock()
	return r, c.d.check(ctx, err)
}

// WaitRemoved polls every poll interval until the target no longer answers,
// then releases it. An ISO/IEC 14443-4 target (one that sent an ATS) is
// checked with Diagnose test 0x06 (presence detection), which leaves it
// selected; any other target is released and looked for again with
// InListPassiveTarget (a target with another UID counts as a new card).
func (c *Card) WaitRemoved(ctx context.Context) error {
	for {
		here, err := c.present(ctx)
		if err := c.d.check(ctx, err); err != nil {
			return err
		}
		if !here {
			return c.Close()
		}
		if err := sleep(ctx, c.d.opts.PollInterval); err != nil {
			return err
		}
	}
}

func (c *Card) present(ctx context.Context) (bool, error) {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	if c.stale() {
		return false, nil
	}
	if len(c.target.ATS) > 0 && !c.released {
		return c.d.present(ctx)
	}
	if !c.released {
		c.released = true
		if err := c.d.inRelease(ctx, c.target.Tg); err != nil && !isStatus(err) {
			return false, err
		}
	}
	t, err := c.d.inListPassiveTarget(ctx)
	if t == nil {
		return false, err
	}
	c.target.Tg, c.released = t.Tg, false
	return bytes.Equal(t.UID, c.target.UID), nil
}

// Close releases the target (InRelease). It is safe to call more than once.
func (c *Card) Close() error {
	c.d.mu.Lock()
	var err error
	if !c.released && !c.stale() {
		c.released = true
		if err = c.d.inRelease(context.Background(), c.target.Tg); isStatus(err) {
			err = nil // the target is gone already
		}
	}
	c.d.mu.Unlock()
	return c.d.check(context.Background(), err)
}

// stale reports whether the chip was initialised again or found another
// card since this one: the card is gone. Called with d.mu held.
func (c *Card) stale() bool { return c.d.needInit || c.session != c.d.session }

// check classifies an error of an exchange with a card: the context's own
// errors and target status errors pass through, anything else means the
// chip failed and turns the reader unhealthy.
func (d *Dev) check(ctx context.Context, err error) error {
	switch {
	case err == nil, isStatus(err), errors.Is(err, reader.ErrCardGone),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), ctx.Err() != nil:
		return err
	}
	d.fail(err)
	return fmt.Errorf("%w: %w", reader.ErrUnavailable, err)
}

func isStatus(err error) bool {
	var s *StatusError
	return errors.As(err, &s)
}
