package hal

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Action is one actuation as a Recorder saw it.
type Action struct {
	// Kind is what was actuated.
	Kind ActionKind
	// Pattern is the feedback pattern (ActionFeedback only).
	Pattern Pattern
	// Window is the engine-start authorization window (ActionEngineStart only).
	Window time.Duration
	// At is when the action happened, by the Recorder's clock.
	At time.Time
}

// DefaultRecordWindow is the engine-start authorization window of a Recorder
// whose RecordConfig leaves EngineWindow zero.
const DefaultRecordWindow = 30 * time.Second

// RecordConfig configures a Recorder. The zero value is usable.
type RecordConfig struct {
	// InitialLock is the lock state at start; empty means Locked.
	InitialLock LockState
	// EngineWindow is the length of an engine-start authorization; zero means
	// DefaultRecordWindow.
	EngineWindow time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per action; nil means slog.Default().
	Logger *slog.Logger
}

// Recorder is the actuator of the simulator and of tests: it drives no
// hardware, logs every action, keeps the state an actuator would have and an
// ordered history of what was actuated. It is safe for concurrent use.
type Recorder struct {
	window time.Duration
	now    func() time.Time
	log    *slog.Logger

	mu          sync.Mutex
	lock        LockState
	engineUntil time.Time
	history     []Action
	closed      bool
}

var _ Actuator = (*Recorder)(nil)

// NewRecorder returns a Recorder in cfg.InitialLock state with no engine-start
// authorization and an empty history.
func NewRecorder(cfg RecordConfig) (*Recorder, error) {
	r := &Recorder{
		lock:   cfg.InitialLock,
		window: cfg.EngineWindow,
		now:    cfg.Now,
		log:    cfg.Logger,
	}
	switch r.lock {
	case "":
		r.lock = Locked
	case Locked, Unlocked:
	default:
		return nil, fmt.Errorf("hal: initial lock state %q is neither %q nor %q", r.lock, Locked, Unlocked)
	}
	if r.window < 0 {
		return nil, fmt.Errorf("hal: negative engine window %v", r.window)
	}
	if r.window == 0 {
		r.window = DefaultRecordWindow
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	return r, nil
}

// Unlock records an unlock and the state unlocked.
func (r *Recorder) Unlock(ctx context.Context) error {
	return r.setLock(ctx, ActionUnlock, Unlocked)
}

// Lock records a lock and the state locked.
func (r *Recorder) Lock(ctx context.Context) error {
	return r.setLock(ctx, ActionLock, Locked)
}

func (r *Recorder) setLock(ctx context.Context, kind ActionKind, s LockState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usable(ctx); err != nil {
		return err
	}
	r.lock = s
	r.record(ctx, Action{Kind: kind})
	return nil
}

// AuthorizeEngineStart records an engine-start authorization that ends by
// itself one window after now; a second call during a window extends it.
func (r *Recorder) AuthorizeEngineStart(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usable(ctx); err != nil {
		return err
	}
	a := Action{Kind: ActionEngineStart, Window: r.window}
	r.record(ctx, a, slog.Int64("window_ms", r.window.Milliseconds()))
	r.engineUntil = r.history[len(r.history)-1].At.Add(r.window)
	return nil
}

// Feedback records a feedback pattern.
func (r *Recorder) Feedback(ctx context.Context, p Pattern) error {
	if !KnownPattern(p) {
		return fmt.Errorf("%w: %q", ErrUnknownPattern, p)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usable(ctx); err != nil {
		return err
	}
	r.record(ctx, Action{Kind: ActionFeedback, Pattern: p}, slog.String("pattern", string(p)))
	return nil
}

// State reports the lock state and the engine-start authorization, which is
// zero once its window has passed. DoorOpen is always nil: no door input.
func (r *Recorder) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := State{Lock: r.lock}
	if !r.engineUntil.IsZero() && r.now().Before(r.engineUntil) {
		s.EngineAuthorizedUntil = r.engineUntil
	}
	return s
}

// History returns a copy of every action so far, oldest first. Close is not an
// action and calls that returned an error are not recorded.
func (r *Recorder) History() []Action {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Action(nil), r.history...)
}

// Close ends any engine-start authorization; later actions fail with
// ErrClosed. Closing twice is harmless.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		r.engineUntil = time.Time{}
		r.log.Info("hal: closed", slog.String("action", "close"))
	}
	return nil
}

// usable is called with r.mu held.
func (r *Recorder) usable(ctx context.Context) error {
	if r.closed {
		return ErrClosed
	}
	return ctx.Err()
}

// record is called with r.mu held.
func (r *Recorder) record(ctx context.Context, a Action, attrs ...slog.Attr) {
	a.At = r.now()
	r.history = append(r.history, a)
	attrs = append([]slog.Attr{slog.String("action", string(a.Kind))}, attrs...)
	r.log.LogAttrs(ctx, slog.LevelInfo, "hal: "+string(a.Kind), attrs...)
}
