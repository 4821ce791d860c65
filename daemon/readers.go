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

// openReader builds a configured reader backend. A backend whose device is
// missing at start (pcscd not running yet, a serial adapter unplugged)
// starts unhealthy and keeps trying: one reader never stops the others.
func (d *Daemon) openReader(rc config.Reader) (reader.Reader, error) {
	// Backends add the reader's name to their log lines themselves.
	switch rc.Backend {
	case "sim":
		r := sim.New(rc.Name)
		d.sim.readers[rc.Name] = r
		return r, nil
	case "pcsc":
		opts := pcsc.Options{Name: rc.Name, Reader: rc.PCSC.Reader, Feedback: rc.PCSC.Feedback, ECPFrame: rc.ECP(), Logger: d.log}
		if _, err := d.pcscManager(); errors.Is(err, pcsc.ErrNotBuilt) {
			return nil, err
		}
		return &retrying{name: rc.Name, since: time.Now(), open: func() (reader.Reader, error) {
			m, err := d.pcscManager()
			if err != nil {
				return nil, fmt.Errorf("waiting for pcscd: %w", err)
			}
			return m.Open(opts)
		}}, nil
	case "pn532":
		p := rc.PN532
		opts := pn532.DefaultOptions()
		opts.Name, opts.Logger, opts.ECPFrame = rc.Name, d.log, rc.ECP()
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
		return &retrying{name: rc.Name, since: time.Now(), open: func() (reader.Reader, error) {
			o := opts
			switch p.Bus {
			case "spi":
				return pn532.OpenSPI(p.Device, &o)
			case "i2c":
				return pn532.OpenI2C(p.Device, &o)
			}
			return pn532.OpenUART(p.Device, &o)
		}}, nil
	}
	return nil, fmt.Errorf("unknown backend %q", rc.Backend)
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

// retryInterval is how often a reader that could not be opened is tried again.
const retryInterval = 500 * time.Millisecond

// retrying is a reader whose backend is opened on first use and opened again
// until that succeeds; until then it reports itself unhealthy with the error.
type retrying struct {
	name  string
	open  func() (reader.Reader, error)
	since time.Time

	mu     sync.Mutex
	r      reader.Reader
	detail string
	errs   uint64
}

func (l *retrying) get() (reader.Reader, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r != nil {
		return l.r, nil
	}
	r, err := l.open()
	if err != nil {
		if l.detail == "" {
			l.errs++
		}
		l.detail = err.Error()
		return nil, err
	}
	l.r = r
	return r, nil
}

func (l *retrying) Name() string { return l.name }

func (l *retrying) WaitCard(ctx context.Context) (reader.Card, error) {
	for {
		r, err := l.get()
		if err == nil {
			return r.WaitCard(ctx)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(retryInterval):
		}
	}
}

func (l *retrying) Health() reader.Health {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r != nil {
		h := l.r.Health()
		h.Errors += l.errs
		if l.errs > 0 {
			h.Recoveries++
		}
		return h
	}
	return reader.Health{OK: false, Detail: l.detail, Since: l.since, Errors: l.errs}
}

func (l *retrying) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r != nil {
		return l.r.Close()
	}
	return nil
}

// Feedback passes reader feedback (an ACR122U's LED and buzzer) through once
// the backend is open.
func (l *retrying) Feedback(ctx context.Context, s reader.Signal) error {
	l.mu.Lock()
	r := l.r
	l.mu.Unlock()
	if f, ok := r.(reader.Feedbacker); ok {
		return f.Feedback(ctx, s)
	}
	return nil
}
