package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dkvehicled/dkvehicled/config"
	"github.com/dkvehicled/dkvehicled/reader"
	"github.com/dkvehicled/dkvehicled/reader/pcsc"
	"github.com/dkvehicled/dkvehicled/reader/pn532"
	"github.com/dkvehicled/dkvehicled/reader/sim"
)

// openReader builds a configured reader backend.
func (d *Daemon) openReader(rc config.Reader) (reader.Reader, error) {
	log := d.log.With("reader", rc.Name)
	switch rc.Backend {
	case "sim":
		r := sim.New(rc.Name)
		d.sim.readers[rc.Name] = r
		return r, nil
	case "pcsc":
		opts := pcsc.Options{Name: rc.Name, Reader: rc.PCSC.Reader, Feedback: rc.PCSC.Feedback, ECPFrame: rc.ECP(), Logger: log}
		return d.pcscReader(opts)
	case "pn532":
		p := rc.PN532
		opts := pn532.DefaultOptions()
		opts.Name, opts.Logger, opts.ECPFrame = rc.Name, log, rc.ECP()
		if p.BitReverse != nil {
			opts.BitReverse = *p.BitReverse
		}
		if p.MaxRetries != nil {
			opts.MaxRetries = uint8(*p.MaxRetries)
		}
		opts.PollInterval = p.PollInterval.Or(opts.PollInterval)
		var err error
		if p.IRQ != "" {
			if opts.IRQ, err = pn532.LookupPin(p.IRQ); err != nil {
				return nil, fmt.Errorf("pn532.irq: %w", err)
			}
		}
		if p.Reset != "" {
			if opts.Reset, err = pn532.LookupPin(p.Reset); err != nil {
				return nil, fmt.Errorf("pn532.reset: %w", err)
			}
		}
		switch p.Bus {
		case "spi":
			return pn532.OpenSPI(p.Device, &opts)
		case "i2c":
			return pn532.OpenI2C(p.Device, &opts)
		default:
			return pn532.OpenUART(p.Device, &opts)
		}
	}
	return nil, fmt.Errorf("unknown backend %q", rc.Backend)
}

// pcscReader opens a PC/SC reader. When pcscd is not running yet, the
// reader starts unhealthy and connects once pcscd is there.
func (d *Daemon) pcscReader(opts pcsc.Options) (reader.Reader, error) {
	if _, err := d.pcscManager(); errors.Is(err, pcsc.ErrNotBuilt) {
		return nil, err
	}
	return &lazyPCSC{d: d, opts: opts, since: time.Now()}, nil
}

// pcscManager returns the shared PC/SC manager, connecting to pcscd first.
func (d *Daemon) pcscManager() (*pcsc.Manager, error) {
	d.pcscMu.Lock()
	defer d.pcscMu.Unlock()
	if d.pcsc != nil {
		return d.pcsc, nil
	}
	m, err := pcsc.NewManager()
	if err != nil {
		return nil, err
	}
	d.pcsc = m
	return m, nil
}

// lazyPCSC is a PC/SC reader whose manager may not exist yet because pcscd
// was not running when the daemon started.
type lazyPCSC struct {
	d     *Daemon
	opts  pcsc.Options
	since time.Time

	mu     sync.Mutex
	r      reader.Reader
	detail string
	errs   uint64
}

func (l *lazyPCSC) get() (reader.Reader, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r != nil {
		return l.r, nil
	}
	m, err := l.d.pcscManager()
	if err == nil {
		l.r, err = m.Open(l.opts)
	}
	if err != nil {
		if l.detail == "" {
			l.errs++
		}
		l.detail = "waiting for pcscd: " + err.Error()
		return nil, err
	}
	return l.r, nil
}

func (l *lazyPCSC) Name() string { return l.opts.Name }

func (l *lazyPCSC) WaitCard(ctx context.Context) (reader.Card, error) {
	for {
		r, err := l.get()
		if err == nil {
			return r.WaitCard(ctx)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pcsc.DefaultRetryInterval):
		}
	}
}

func (l *lazyPCSC) Health() reader.Health {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r != nil {
		return l.r.Health()
	}
	return reader.Health{OK: false, Detail: l.detail, Since: l.since, Errors: l.errs}
}

func (l *lazyPCSC) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r != nil {
		return l.r.Close()
	}
	return nil
}

// Feedback passes ACR122U feedback through once the reader exists.
func (l *lazyPCSC) Feedback(ctx context.Context, s reader.Signal) error {
	l.mu.Lock()
	r := l.r
	l.mu.Unlock()
	if f, ok := r.(reader.Feedbacker); ok {
		return f.Feedback(ctx, s)
	}
	return nil
}
