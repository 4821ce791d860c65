//go:build pcsc

package pcsc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ebfe/scard"

	"github.com/dkvehicled/dkvehicled/reader"
)

// pcscReader is one configured reader. WaitCard runs in one goroutine;
// Health, Feedback and Close may be called from others.
type pcscReader struct {
	m      *Manager
	o      Options
	log    *slog.Logger
	health *health
	done   chan struct{} // closed by Close

	lastSkip string // the last connect failure logged; WaitCard's own

	mu     sync.Mutex
	sc     *scard.Context // status context, used by WaitCard; nil while unavailable
	device string         // the PC/SC reader in use; "" while unavailable
	acr    bool           // device is an ACR122U
	ecp    bool           // ECP frames are being sent
	card   *card          // the card last returned by WaitCard, until closed
	closed bool
}

func newReader(m *Manager, o Options) *pcscReader {
	return &pcscReader{
		m:      m,
		o:      o,
		log:    o.Logger.With("reader", o.Name),
		health: newHealth(time.Now),
		done:   make(chan struct{}),
	}
}

// Name returns the configured name (Options.Name).
func (r *pcscReader) Name() string { return r.o.Name }

// Health reports the reader's state.
func (r *pcscReader) Health() reader.Health { return r.health.get() }

// setup connects to pcscd, finds the configured reader and, for an
// ACR122U, reads its firmware through the CCID escape.
func (r *pcscReader) setup() error {
	sc, err := establish()
	if err != nil {
		return err
	}
	names, err := listReaders(sc)
	if err != nil {
		sc.Release()
		return err
	}
	dev, ok := r.m.claim(r, names)
	if !ok {
		sc.Release()
		return fmt.Errorf("%w: no free reader matches %q (pcscd has %s)", reader.ErrUnavailable, r.o.Reader, describe(names))
	}
	acr := isACR122U(dev)
	detail := "ready: " + dev
	var firmware string
	var escapeErr error
	if acr {
		firmware, escapeErr = readFirmware(dev)
		if escapeErr != nil {
			detail += "; CCID escape unavailable, so no firmware, no ECP and no LED without a card (see docs/pcsc.md): " + escapeErr.Error()
			r.log.Warn("ACR122U escape unavailable", "device", dev, "err", escapeErr)
		}
	}
	ecp := r.o.ECPFrame != nil && acr && escapeErr == nil
	if r.o.ECPFrame != nil && !ecp {
		r.log.Warn("ECP configured but this reader cannot send it", "device", dev)
	}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.m.unclaim(r, dev)
		sc.Release()
		return ErrClosed
	}
	r.sc, r.device, r.acr, r.ecp = sc, dev, acr, ecp
	r.mu.Unlock()

	if r.health.ok(detail, firmware, ecp) {
		r.log.Info("pcsc reader recovered", "device", dev)
	} else {
		r.log.Info("pcsc reader ready", "device", dev, "firmware", firmware, "ecp", ecp)
	}
	return nil
}

// describe lists reader names for a health detail.
func describe(names []string) string {
	if len(names) == 0 {
		return "no readers"
	}
	return fmt.Sprintf("%q", strings.Join(names, `", "`))
}

// fail drops the status context after err and marks the reader unhealthy.
func (r *pcscReader) fail(err error) {
	r.mu.Lock()
	sc, dev := r.sc, r.device
	r.sc, r.device, r.ecp = nil, "", false
	r.mu.Unlock()
	if sc != nil {
		sc.Release()
	}
	if dev != "" {
		r.m.unclaim(r, dev)
	}
	if r.health.fail(err.Error()) {
		r.log.Warn("pcsc reader unavailable", "err", err)
	}
}

// WaitCard blocks until a card is present and connected, or ctx ends, or
// the reader is closed. While pcscd or the reader is away it retries every
// RetryInterval and keeps Health up to date. A card that cannot be
// connected (it left at once, or another program holds it exclusively) is
// tried again every RetryInterval while it stays.
func (r *pcscReader) WaitCard(ctx context.Context) (reader.Card, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r.mu.Lock()
		sc, dev, closed := r.sc, r.device, r.closed
		r.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if sc == nil {
			if err := r.setup(); err != nil {
				if errors.Is(err, ErrClosed) {
					return nil, err
				}
				r.fail(err)
				sleep(ctx, r.done, r.o.RetryInterval)
			}
			continue
		}

		state, err := r.waitPresent(ctx, sc, dev)
		if err == nil {
			var c *card
			if c, err = r.connect(dev, state); err == nil {
				r.lastSkip = ""
				return c, nil
			}
			if !errors.Is(err, reader.ErrUnavailable) {
				r.skip(dev, err)
				sleep(ctx, r.done, r.o.RetryInterval)
				continue
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if r.isClosed() {
			return nil, ErrClosed
		}
		r.fail(err)
	}
}

// skip logs a card that could not be connected, once per kind of failure.
func (r *pcscReader) skip(dev string, err error) {
	switch {
	case errors.Is(err, reader.ErrCardGone):
		r.log.Debug("pcsc card left before it was connected", "device", dev, "err", err)
	case err.Error() != r.lastSkip:
		r.lastSkip = err.Error()
		r.log.Warn("pcsc card cannot be connected", "device", dev, "err", err)
	}
}

// waitPresent waits on the status context until a card that answered its
// reset is present, sending ECP frames meanwhile when they are on.
func (r *pcscReader) waitPresent(ctx context.Context, sc *scard.Context, dev string) (scard.StateFlag, error) {
	slice := waitSlice
	var between func()
	if e := r.startECP(sc, dev); e != nil {
		defer e.close()
		slice, between = r.o.ECPInterval, e.send
	}
	rs := []scard.ReaderState{{Reader: dev, CurrentState: scard.StateUnaware}}
	for {
		state, err := waitState(ctx, r.done, sc, rs, slice, between)
		switch {
		case err != nil:
			return 0, err
		case state&(scard.StateUnknown|scard.StateUnavailable) != 0:
			return 0, fmt.Errorf("%w: reader %q went away", reader.ErrUnavailable, dev)
		case state&scard.StatePresent != 0 && state&scard.StateMute == 0:
			return state, nil
		}
	}
}

// connect connects to the card in dev, on a context of the card's own.
func (r *pcscReader) connect(dev string, state scard.StateFlag) (*card, error) {
	sc, err := establish()
	if err != nil {
		return nil, err
	}
	h, err := sc.Connect(dev, scard.ShareShared, scard.ProtocolAny)
	if err != nil {
		sc.Release()
		return nil, wrap("SCardConnect", err)
	}
	c := &card{r: r, device: dev, inserted: state, sc: sc, h: h}
	r.mu.Lock()
	r.card = c
	r.mu.Unlock()
	r.log.Debug("pcsc card connected", "device", dev)
	return c, nil
}

// cardClosed forgets c as the current card.
func (r *pcscReader) cardClosed(c *card) {
	r.mu.Lock()
	if r.card == c {
		r.card = nil
	}
	r.mu.Unlock()
}

func (r *pcscReader) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Close stops the reader: a WaitCard in progress returns ErrClosed. A card
// already returned stays usable until its own Close.
func (r *pcscReader) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.done)
	sc, dev := r.sc, r.device
	r.sc, r.device = nil, ""
	r.mu.Unlock()
	if sc != nil {
		sc.Cancel()
		sc.Release()
	}
	if dev != "" {
		r.m.unclaim(r, dev)
	}
	r.m.forget(r)
	return nil
}
