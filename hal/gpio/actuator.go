package gpio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/dkvehicled/dkvehicled/hal"
)

// ErrNotWired reports an action whose output has no line configured.
var ErrNotWired = errors.New("output not wired")

// Pins are the resolved lines an Actuator drives; a nil field is not wired.
// Open resolves them from a Config; tests pass periph's gpiotest pins.
type Pins struct {
	// Unlock is the door-unlock output.
	Unlock gpio.PinOut
	// Lock is the door-lock output.
	Lock gpio.PinOut
	// Engine is the engine-start authorization output.
	Engine gpio.PinOut
	// LED is the feedback LED.
	LED gpio.PinOut
	// Buzzer is the feedback buzzer.
	Buzzer gpio.PinOut
	// Door is the door-state input.
	Door gpio.PinIn
}

// Option changes how New builds an Actuator.
type Option func(*Actuator)

// WithClock sets the clock of pulses, patterns and the engine-start window
// (default: the system clock).
func WithClock(c Clock) Option { return func(a *Actuator) { a.clock = c } }

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(a *Actuator) { a.log = l } }

// Actuator drives the vehicle's outputs through GPIO lines. It implements
// hal.Actuator and is safe for concurrent use.
type Actuator struct {
	cfg   Config
	clock Clock
	log   *slog.Logger

	unlock, lock, engine, led, buzzer *outLine // nil when not wired
	door                              gpio.PinIn
	doorMu                            sync.Mutex // no door read while Close releases the lines

	doors chan struct{} // one lock or unlock pulse at a time

	done      chan struct{} // closed by Close: cuts waits short
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	release   func() // set by Open: gives the lines back to the kernel

	mu          sync.Mutex // guards the fields below
	lockState   hal.LockState
	engineUntil time.Time
	engineTimer Timer
	engineGen   uint64 // identifies the current window for its timer

	patternMu     sync.Mutex // guards the running pattern
	patternCancel context.CancelFunc
	patternRun    sync.WaitGroup
}

var _ hal.Actuator = (*Actuator)(nil)

// New checks cfg, drives every output to its inactive level (nothing is
// pulsed, nothing authorized) and configures the door input. Only the
// active-low flags, durations, mode and patterns of cfg are used here; each
// configured line must come with its pin in pins and vice versa.
//
// The lock state starts as hal.Locked: the vehicle is assumed parked and
// locked until the first lock or unlock pulse (there is no lock-state input).
func New(cfg Config, pins Pins, opts ...Option) (*Actuator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Actuator{
		cfg:       cfg,
		clock:     systemClock{},
		log:       slog.Default(),
		doors:     make(chan struct{}, 1),
		done:      make(chan struct{}),
		lockState: hal.Locked,
	}
	for _, o := range opts {
		o(a)
	}

	var errs []error
	wire := func(key string, o Output, pin gpio.PinOut) *outLine {
		switch {
		case o.Line == "" && pin == nil:
			return nil
		case pin == nil:
			errs = append(errs, fmt.Errorf("%s%s: line %q configured but no pin given", keyPrefix, key, o.Line))
			return nil
		case o.Line == "":
			errs = append(errs, fmt.Errorf("%s%s: pin %s given but no line configured", keyPrefix, key, pin))
			return nil
		}
		return newOutLine(key, pin, o.ActiveLow)
	}
	a.unlock = wire("unlock", cfg.Unlock, pins.Unlock)
	a.lock = wire("lock", cfg.Lock, pins.Lock)
	a.engine = wire("engine", cfg.Engine, pins.Engine)
	a.led = wire("led", cfg.LED, pins.LED)
	a.buzzer = wire("buzzer", cfg.Buzzer, pins.Buzzer)
	switch {
	case cfg.DoorInput.Line != "" && pins.Door == nil:
		errs = append(errs, fmt.Errorf("%sdoor: line %q configured but no pin given", keyPrefix, cfg.DoorInput.Line))
	case cfg.DoorInput.Line == "" && pins.Door != nil:
		errs = append(errs, fmt.Errorf("%sdoor: pin %s given but no line configured", keyPrefix, pins.Door))
	default:
		a.door = pins.Door
	}

	// Inactive first, every output, even when one of them fails.
	for _, l := range a.outputs() {
		if err := l.set(false); err != nil {
			errs = append(errs, err)
		}
	}
	if a.door != nil {
		if err := a.door.In(cfg.DoorInput.Pull.periph(), gpio.NoEdge); err != nil {
			errs = append(errs, fmt.Errorf("%sdoor: line %s: configure input: %w", keyPrefix, a.door.Name(), err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, l := range a.outputs() {
		a.log.Debug("hal: output inactive", slog.String("output", l.key), slog.String("line", l.pin.Name()),
			slog.Bool("active_low", l.activeLow))
	}
	return a, nil
}

// outputs lists the wired outputs.
func (a *Actuator) outputs() []*outLine {
	var ls []*outLine
	for _, l := range []*outLine{a.unlock, a.lock, a.engine, a.led, a.buzzer} {
		if l != nil {
			ls = append(ls, l)
		}
	}
	return ls
}

// Unlock sends the unlock pulse and records the state as unlocked. It returns
// once the pulse has ended; cancelling ctx stops waiting for a turn but never
// shortens a pulse that has started.
func (a *Actuator) Unlock(ctx context.Context) error {
	return a.doorPulse(ctx, a.unlock, a.cfg.UnlockPulse, hal.ActionUnlock, hal.Unlocked)
}

// Lock sends the lock pulse and records the state as locked, like Unlock.
func (a *Actuator) Lock(ctx context.Context) error {
	return a.doorPulse(ctx, a.lock, a.cfg.LockPulse, hal.ActionLock, hal.Locked)
}

// doorPulse pulses l; lock and unlock pulses never overlap, so the lock
// motor is never driven both ways at once.
func (a *Actuator) doorPulse(ctx context.Context, l *outLine, d time.Duration, kind hal.ActionKind, s hal.LockState) error {
	if err := a.usable(ctx); err != nil {
		return err
	}
	select {
	case a.doors <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-a.done:
		return hal.ErrClosed
	}
	defer func() { <-a.doors }()
	if err := a.pulse(ctx, l, d); err != nil {
		return err
	}
	a.mu.Lock()
	a.lockState = s
	a.mu.Unlock()
	a.log.LogAttrs(ctx, slog.LevelInfo, "hal: "+string(kind), slog.String("action", string(kind)),
		slog.String("line", l.pin.Name()), slog.Int64("ms", d.Milliseconds()))
	return nil
}

// pulse drives l active for d, then inactive. Close cuts it short.
func (a *Actuator) pulse(ctx context.Context, l *outLine, d time.Duration) error {
	if err := a.take(ctx, l); err != nil {
		return err
	}
	defer l.give()
	if err := l.set(true); err != nil {
		return errors.Join(err, l.set(false))
	}
	full := a.wait(d, nil)
	if err := l.set(false); err != nil {
		return err
	}
	if !full {
		return fmt.Errorf("%s%s: pulse cut short: %w", keyPrefix, l.key, hal.ErrClosed)
	}
	return nil
}

// take waits for l's turn. After Close it fails with hal.ErrClosed.
func (a *Actuator) take(ctx context.Context, l *outLine) error {
	if l == nil {
		return ErrNotWired
	}
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-a.done:
		return hal.ErrClosed
	}
	if a.closed.Load() {
		l.give()
		return hal.ErrClosed
	}
	return nil
}

// wait waits for d on the actuator's clock; it returns false when stop or
// Close came first.
func (a *Actuator) wait(d time.Duration, stop <-chan struct{}) bool {
	fired := make(chan struct{})
	t := a.clock.AfterFunc(d, func() { close(fired) })
	select {
	case <-fired:
		return true
	case <-stop:
	case <-a.done:
	}
	t.Stop()
	return false
}

// usable reports ErrClosed after Close, else ctx's error.
func (a *Actuator) usable(ctx context.Context) error {
	if a.closed.Load() {
		return hal.ErrClosed
	}
	return ctx.Err()
}

// State reports the lock state as last pulsed, the end of the current
// engine-start authorization and, when wired, the door input (not after
// Close, when the line is released).
func (a *Actuator) State() hal.State {
	a.mu.Lock()
	s := hal.State{Lock: a.lockState}
	until := a.engineUntil
	a.mu.Unlock()
	if !until.IsZero() && a.clock.Now().Before(until) {
		s.EngineAuthorizedUntil = until
	}
	if a.door != nil {
		a.doorMu.Lock()
		if !a.closed.Load() {
			open := a.door.Read() == gpio.Level(!a.cfg.DoorInput.ActiveLow)
			s.DoorOpen = &open
		}
		a.doorMu.Unlock()
	}
	return s
}

// Close stops any pattern, cuts a running pulse short, ends the engine-start
// authorization, drives every output inactive and gives the lines back.
// Later calls fail with hal.ErrClosed. Closing twice is harmless.
func (a *Actuator) Close() error {
	a.closeOnce.Do(func() { a.closeErr = a.close() })
	return a.closeErr
}

func (a *Actuator) close() error {
	a.closed.Store(true)
	close(a.done)

	a.patternMu.Lock()
	a.stopPatternLocked()
	a.patternMu.Unlock()

	a.mu.Lock()
	if a.engineTimer != nil {
		a.engineTimer.Stop()
		a.engineTimer = nil
	}
	a.engineUntil = time.Time{}
	a.engineGen++
	a.mu.Unlock()

	var errs []error
	for _, l := range a.outputs() {
		l.turn <- struct{}{} // kept: nothing drives the line after Close
		if err := l.set(false); err != nil {
			errs = append(errs, err)
		}
	}
	if a.release != nil {
		a.doorMu.Lock()
		a.release()
		a.doorMu.Unlock()
	}
	a.log.Info("hal: closed, outputs inactive", slog.String("action", "close"))
	return errors.Join(errs...)
}

// periph maps a configured bias to periph's.
func (p Pull) periph() gpio.Pull {
	switch p {
	case PullOff:
		return gpio.Float
	case PullUp:
		return gpio.PullUp
	case PullDown:
		return gpio.PullDown
	}
	return gpio.PullNoChange
}
