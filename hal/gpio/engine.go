package gpio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dkvehicled/dkvehicled/hal"
)

// AuthorizeEngineStart grants the engine controller a time-limited start
// permission. In window mode the engine line goes active and goes inactive
// by itself after Config.EngineWindow; a call during a window extends it
// without a new edge. In pulse mode it sends one pulse of Config.EnginePulse
// and reports the permission as lasting Config.EngineWindow from the start
// of the pulse. Without an engine line it fails with ErrNotWired.
func (a *Actuator) AuthorizeEngineStart(ctx context.Context) error {
	if a.engine == nil {
		return fmt.Errorf("%sengine: %w", keyPrefix, ErrNotWired)
	}
	if err := a.usable(ctx); err != nil {
		return err
	}
	if a.cfg.EngineMode == EngineModePulse {
		return a.enginePulse(ctx)
	}
	return a.engineWindow(ctx)
}

func (a *Actuator) enginePulse(ctx context.Context) error {
	start := a.clock.Now()
	if err := a.pulse(ctx, a.engine, a.cfg.EnginePulse); err != nil {
		return err
	}
	a.mu.Lock()
	a.engineUntil = start.Add(a.cfg.EngineWindow)
	a.mu.Unlock()
	a.log.LogAttrs(ctx, slog.LevelInfo, "hal: engine-start authorization", slog.String("action", string(hal.ActionEngineStart)),
		slog.String("mode", string(EngineModePulse)), slog.String("line", a.engine.pin.Name()),
		slog.Int64("ms", a.cfg.EnginePulse.Milliseconds()), slog.Int64("window_ms", a.cfg.EngineWindow.Milliseconds()))
	return nil
}

func (a *Actuator) engineWindow(ctx context.Context) error {
	if err := a.take(ctx, a.engine); err != nil {
		return err
	}
	defer a.engine.give()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.engineTimer != nil {
		a.engineTimer.Stop()
		a.engineTimer = nil
	}
	a.engineGen++
	if a.engineUntil.IsZero() {
		if err := a.engine.set(true); err != nil {
			return errors.Join(err, a.engine.set(false))
		}
	}
	w := a.cfg.EngineWindow
	a.engineUntil = a.clock.Now().Add(w)
	gen := a.engineGen
	a.engineTimer = a.clock.AfterFunc(w, func() { a.endWindow(gen) })
	a.log.LogAttrs(ctx, slog.LevelInfo, "hal: engine-start authorization", slog.String("action", string(hal.ActionEngineStart)),
		slog.String("mode", string(EngineModeWindow)), slog.String("line", a.engine.pin.Name()),
		slog.Int64("window_ms", w.Milliseconds()))
	return nil
}

// endRetry is how long endWindow waits before trying again to drive the
// engine line inactive.
const endRetry = time.Second

// endWindow ends window gen unless a later call extended it or Close ended it.
func (a *Actuator) endWindow(gen uint64) {
	select {
	case a.engine.turn <- struct{}{}:
	case <-a.done:
		return
	}
	defer a.engine.give()
	a.mu.Lock()
	defer a.mu.Unlock()
	if gen != a.engineGen || a.closed.Load() {
		return
	}
	a.engineUntil = time.Time{}
	a.engineTimer = nil
	if err := a.engine.set(false); err != nil {
		// Try again each second until the line obeys or a new window or
		// Close takes over.
		a.engineTimer = a.clock.AfterFunc(endRetry, func() { a.endWindow(gen) })
		a.log.Error("hal: engine-start authorization did not end, retrying", slog.String("action", "engine_window_end"),
			slog.String("line", a.engine.pin.Name()), slog.Any("err", err))
		return
	}
	a.log.Info("hal: engine-start authorization ended", slog.String("action", "engine_window_end"),
		slog.String("line", a.engine.pin.Name()))
}
