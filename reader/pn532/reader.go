package pn532

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"

	"github.com/dkvehicled/dkvehicled/reader"
)

// Re-initialisation backoff after a failure.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// resetPulse is how long RSTPDN is held low, and resetBoot how long the chip
// then takes to start.
const (
	resetPulse = 20 * time.Millisecond
	resetBoot  = 10 * time.Millisecond
)

// Dev is a PN532 used as an NFC reader. It implements reader.Reader.
type Dev struct {
	opts   Options
	t      transport
	log    *slog.Logger
	closer io.Closer // the bus, when an Open helper opened it

	mu       sync.Mutex // one exchange with the chip at a time
	needInit bool
	ecp      bool   // send the ECP frame: configured, and not rejected by the chip
	session  uint64 // counts initialisations and cards; a Card of an older one is gone

	hmu    sync.Mutex
	health reader.Health
	failed bool // an error happened since the last successful initialisation
}

var (
	_ reader.Reader = (*Dev)(nil)
	_ conn.Resource = (*Dev)(nil)
)

func newDev(t transport, o Options) (*Dev, error) {
	if len(o.ECPFrame) > maxDataOut {
		return nil, fmt.Errorf("pn532: ECP frame of %d bytes, at most %d", len(o.ECPFrame), maxDataOut)
	}
	if o.IRQ != nil {
		if err := o.IRQ.In(gpio.PullUp, gpio.FallingEdge); err != nil {
			return nil, fmt.Errorf("pn532: IRQ pin: %w", err)
		}
	}
	if o.Reset != nil {
		if err := o.Reset.Out(gpio.High); err != nil {
			return nil, fmt.Errorf("pn532: reset pin: %w", err)
		}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dev{
		opts:     o,
		t:        t,
		log:      log.With("reader", o.Name),
		needInit: true,
		ecp:      o.ECPFrame != nil,
		health:   reader.Health{Detail: "not initialised yet", ECP: o.ECPFrame != nil, Since: time.Now()},
	}, nil
}

// Name returns the configured name.
func (d *Dev) Name() string { return d.opts.Name }

// String implements conn.Resource.
func (d *Dev) String() string { return "pn532(" + d.opts.Name + ")" }

// Health reports the reader's state.
func (d *Dev) Health() reader.Health {
	d.hmu.Lock()
	defer d.hmu.Unlock()
	return d.health
}

// WaitCard polls until a type A target is in the field and returns it, or
// until ctx ends. The chip is initialised on the first call; New does not
// talk to it, so a daemon starts while the reader is unplugged.
//
// Each poll cycle probes the chip (GetFirmwareVersion), sends the ECP frame
// if configured (unless the chip rejected it with an error frame, which
// also clears Health().ECP), then InListPassiveTarget, and sleeps out the
// rest of the poll interval. On a failure the reader turns unhealthy and is
// reset (RSTPDN, when wired) and initialised again with a backoff from
// 100 ms doubling to 5 s. Every target found is returned, whatever its ATQA
// and SAK. A Card returned before is gone once WaitCard returns a new one.
func (d *Dev) WaitCard(ctx context.Context) (reader.Card, error) {
	backoff := minBackoff
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		t, err := d.pollOnce(ctx)
		if err != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		wait := d.opts.PollInterval - time.Since(start)
		switch {
		case err != nil:
			d.fail(err)
			d.log.Debug("pn532 retries after a failure", "err", err, "retry_in", backoff)
			wait, backoff = backoff, min(2*backoff, maxBackoff)
		case t != nil:
			d.log.Debug("pn532 found a target", "atqa", fmt.Sprintf("%04X", t.ATQA), "sak", fmt.Sprintf("%02X", t.SAK), "iso_dep", t.ISODEP())
			d.mu.Lock()
			d.session++
			c := &Card{d: d, target: *t, session: d.session}
			d.mu.Unlock()
			return c, nil
		default:
			backoff = minBackoff
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// pollOnce initialises the chip if needed, probes it, sends the ECP frame
// and polls once for a target.
func (d *Dev) pollOnce(ctx context.Context) (*Target, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.needInit {
		if err := d.init(ctx); err != nil {
			return nil, err
		}
	} else if _, err := d.getFirmwareVersion(ctx); err != nil {
		return nil, err
	}
	if d.ecp {
		// The phone does not answer the ECP frame: a timeout status is normal.
		_, _, err := d.inCommunicateThru(ctx, d.opts.ECPFrame)
		switch {
		case errors.Is(err, ErrApplication):
			d.ecp = false
			d.hmu.Lock()
			d.health.ECP = false
			d.hmu.Unlock()
			d.log.Warn("pn532 rejected the ECP frame; polling without it", "err", err)
		case err != nil:
			return nil, err
		}
	}
	return d.inListPassiveTarget(ctx)
}

// init resets the chip if a reset line is wired, then configures it.
func (d *Dev) init(ctx context.Context) error {
	if d.opts.Reset != nil {
		if err := d.resetChip(ctx); err != nil {
			return err
		}
	}
	d.t.wake()
	// The first command after power-up may be lost while the chip wakes up.
	if err := d.samConfiguration(ctx); err != nil {
		if err := d.samConfiguration(ctx); err != nil {
			return err
		}
	}
	fw, err := d.getFirmwareVersion(ctx)
	if err != nil {
		return err
	}
	if err := d.rfConfiguration(ctx, rfMaxRetries, 0xFF, 0x01, d.opts.MaxRetries); err != nil {
		return err
	}
	if err := d.rfConfiguration(ctx, rfTimings, 0x00, atrResTimeout, rfTimeoutCode(d.opts.RFTimeout)); err != nil {
		return err
	}
	if d.ecp {
		if err := d.rfConfiguration(ctx, rfField, 0x01); err != nil {
			return err
		}
	}
	d.needInit = false
	d.session++
	d.up(fw.String())
	return nil
}

func (d *Dev) resetChip(ctx context.Context) error {
	if err := d.opts.Reset.Out(gpio.Low); err != nil {
		return fmt.Errorf("pn532: reset pin: %w", err)
	}
	if err := sleep(ctx, resetPulse); err != nil {
		return err
	}
	if err := d.opts.Reset.Out(gpio.High); err != nil {
		return fmt.Errorf("pn532: reset pin: %w", err)
	}
	return sleep(ctx, resetBoot)
}

// up records a successful initialisation.
func (d *Dev) up(fw string) {
	d.hmu.Lock()
	defer d.hmu.Unlock()
	d.health.Firmware = fw
	if d.health.OK {
		return
	}
	d.health.OK, d.health.Detail, d.health.Since = true, "ready", time.Now()
	if d.failed {
		d.failed = false
		d.health.Recoveries++
		d.log.Info("pn532 recovered", "firmware", fw, "recoveries", d.health.Recoveries)
		return
	}
	d.log.Info("pn532 ready", "firmware", fw)
}

// fail records a reader error; the next poll initialises the chip again.
func (d *Dev) fail(err error) {
	d.mu.Lock()
	d.needInit = true
	d.mu.Unlock()
	d.hmu.Lock()
	defer d.hmu.Unlock()
	d.health.Errors++
	d.failed = true
	if d.health.OK {
		d.health.OK, d.health.Since = false, time.Now()
		d.log.Warn("pn532 unavailable", "err", err)
	}
	d.health.Detail = err.Error()
}

// Halt switches the RF field off.
func (d *Dev) Halt() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rfConfiguration(context.Background(), rfField, 0x00)
}

// Close switches the RF field off and puts the chip into PowerDown (when it
// was initialised), and closes the bus if an Open helper opened it.
func (d *Dev) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var err error
	if !d.needInit {
		ctx := context.Background()
		if err = d.rfConfiguration(ctx, rfField, 0x00); err == nil {
			err = d.powerDown(ctx)
		}
		d.needInit = true
	}
	if d.closer != nil {
		err = errors.Join(err, d.closer.Close())
	}
	return err
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
