//go:build pcsc

package pcsc

import (
	"context"
	"errors"
	"sync"

	"github.com/ebfe/scard"

	"github.com/dkvehicled/dkvehicled/reader"
)

// card is a card connection in shared mode on a PC/SC context of its own,
// so that exchanges never wait behind another goroutine's status wait.
type card struct {
	r        *pcscReader
	device   string
	inserted scard.StateFlag // the reader's state when the card was found

	mu     sync.Mutex
	sc     *scard.Context
	h      *scard.Card
	gone   bool // an exchange found the card gone
	closed bool
}

// Transceive sends one raw command APDU and returns the raw response. It
// checks ctx before sending; the exchange itself cannot be interrupted
// (PC/SC has no way to abort SCardTransmit) and lasts until the card answers
// or the reader gives up on it. Errors wrap reader.ErrCardGone when the card
// left and reader.ErrUnavailable when the reader or pcscd did.
func (c *card) Transceive(ctx context.Context, command []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(command) == 0 {
		return nil, errors.New("pcsc: empty command APDU")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	rsp, err := c.h.Transmit(command)
	if err != nil {
		err = wrap("SCardTransmit", err)
		c.gone = c.gone || errors.Is(err, reader.ErrCardGone)
		return nil, err
	}
	return rsp, nil
}

// WaitRemoved blocks until the card has left the reader (or another card
// took its place, or the reader went away) or ctx ends. It waits on a PC/SC
// context of its own, so Transceive and Feedback stay usable meanwhile, and
// it works after Close too.
func (c *card) WaitRemoved(ctx context.Context) error {
	sc, err := establish()
	if err != nil {
		return err
	}
	defer sc.Release()
	rs := []scard.ReaderState{{Reader: c.device, CurrentState: c.inserted}}
	for {
		state, err := waitState(ctx, nil, sc, rs, waitSlice, nil)
		switch {
		case hasCode(err, codeUnknownReader):
			return nil
		case err != nil:
			return err
		case state&(scard.StateEmpty|scard.StateUnknown|scard.StateUnavailable) != 0,
			counter(state) != counter(c.inserted):
			return nil
		}
	}
}

// Close disconnects. A card still present is powered down
// (SCARD_UNPOWER_CARD) so that the next session starts from a fresh
// activation; a card known to be gone is left alone (SCARD_LEAVE_CARD).
// Closing twice is harmless.
func (c *card) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	disp := scard.UnpowerCard
	if c.gone {
		disp = scard.LeaveCard
	}
	err := wrap("SCardDisconnect", c.h.Disconnect(disp))
	c.sc.Release()
	c.mu.Unlock()
	c.r.cardClosed(c)
	if errors.Is(err, reader.ErrCardGone) || errors.Is(err, reader.ErrUnavailable) {
		return nil
	}
	return err
}
