package gpio

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dkvehicled/dkvehicled/hal"
)

// Feedback starts pattern p on the LED and the buzzer and returns at once; the
// pattern plays in the background. A new pattern replaces a running one: the
// old one stops and its outputs go inactive first. Without LED and buzzer it
// does nothing.
func (a *Actuator) Feedback(ctx context.Context, p hal.Pattern) error {
	pat, ok := a.cfg.Patterns.For(p)
	if !ok {
		return fmt.Errorf("%w: %q", hal.ErrUnknownPattern, p)
	}
	if err := a.usable(ctx); err != nil {
		return err
	}
	a.patternMu.Lock()
	defer a.patternMu.Unlock()
	if a.closed.Load() {
		return hal.ErrClosed
	}
	a.stopPatternLocked()
	run, cancel := context.WithCancel(context.Background())
	a.patternCancel = cancel
	for _, o := range []struct {
		l     *outLine
		steps []time.Duration
	}{{a.led, pat.LED}, {a.buzzer, pat.Buzzer}} {
		if o.l != nil && len(o.steps) > 0 {
			a.patternRun.Go(func() { a.play(run, o.l, o.steps) })
		}
	}
	a.log.LogAttrs(ctx, slog.LevelDebug, "hal: feedback", slog.String("action", string(hal.ActionFeedback)),
		slog.String("pattern", string(p)))
	return nil
}

// stopPatternLocked stops the running pattern and waits until its outputs
// are inactive. The caller holds patternMu.
func (a *Actuator) stopPatternLocked() {
	if a.patternCancel != nil {
		a.patternCancel()
		a.patternRun.Wait()
		a.patternCancel = nil
	}
}

// play drives l through steps (on, off, on, ...) and leaves it inactive.
func (a *Actuator) play(run context.Context, l *outLine, steps []time.Duration) {
	if err := a.take(run, l); err != nil {
		return
	}
	defer l.give()
	active := false
	for i, d := range steps {
		on := i%2 == 0
		if err := l.set(on); err != nil {
			a.log.Warn("hal: feedback output failed", slog.String("line", l.pin.Name()), slog.Any("err", err))
			active = true // unknown: make sure it ends inactive
			break
		}
		active = on
		if !a.wait(d, run.Done()) {
			break
		}
	}
	if active {
		if err := l.set(false); err != nil {
			a.log.Warn("hal: feedback output failed", slog.String("line", l.pin.Name()), slog.Any("err", err))
		}
	}
}
