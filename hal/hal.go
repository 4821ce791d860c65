// Package hal is the vehicle's side of actuation and feedback: lock, unlock,
// engine-start authorization, LED and buzzer. The daemon calls an Actuator only
// after a whole transaction succeeded. Backends: the recording backend in this
// package (simulator and tests) and gpio/ (periph.io GPIO character device).
//
// Engine-start authorization is always a time-limited permission handed to the
// engine controller (a pulse or a window of configured length), never a line
// that a running engine depends on. No backend acts at start, at shutdown or
// after a crash.
package hal

import (
	"context"
	"errors"
	"time"
)

// LockState is the state of the door locks as the vehicle knows it: the
// state the last lock or unlock pulse put them in, not a sensed one. No
// backend reads a lock-state input (the gpio backend's optional door input
// tells whether a door is open, not whether it is locked), so a lock or
// unlock done with a key or from inside the car is not seen.
//
// At start every backend reports Locked, the vehicle being assumed parked
// and locked, until its first lock or unlock pulse: the gpio backend always,
// the Recorder unless RecordConfig.InitialLock says otherwise. The daemon
// relies on this; there is deliberately no "unknown" state.
type LockState string

// Lock states.
const (
	Locked   LockState = "locked"
	Unlocked LockState = "unlocked"
)

// Pattern is a feedback pattern on the LED and buzzer.
type Pattern string

// Feedback patterns, one per kind of outcome.
const (
	PatternSeen    Pattern = "seen"
	PatternAllowed Pattern = "allowed"
	PatternDenied  Pattern = "denied"
	PatternError   Pattern = "error"
)

// The names below are shared by every backend.

// ErrClosed reports a call on an actuator after its Close (errors.Is), and a
// pulse that Close cut short.
var ErrClosed = errors.New("hal: actuator closed")

// ErrUnknownPattern reports (errors.Is) a Feedback call with a pattern that is
// not one of PatternSeen, PatternAllowed, PatternDenied or PatternError.
var ErrUnknownPattern = errors.New("hal: unknown feedback pattern")

// KnownPattern reports whether p is one of the four feedback patterns.
func KnownPattern(p Pattern) bool {
	switch p {
	case PatternSeen, PatternAllowed, PatternDenied, PatternError:
		return true
	}
	return false
}

// ActionKind names one kind of actuation. Backends use these values for the
// log key "action".
type ActionKind string

// Kinds of actuation.
const (
	ActionUnlock      ActionKind = "unlock"
	ActionLock        ActionKind = "lock"
	ActionEngineStart ActionKind = "engine_start"
	ActionFeedback    ActionKind = "feedback"
)

// State is what an actuator reports for status.
type State struct {
	// Lock is the lock state as last actuated (Locked at start; see
	// LockState).
	Lock LockState `json:"lock"`
	// EngineAuthorizedUntil is the end of the current engine-start
	// authorization window; zero when none is held.
	EngineAuthorizedUntil time.Time `json:"engine_authorized_until,omitzero"`
	// DoorOpen is the door-state input when one is wired (nil otherwise).
	DoorOpen *bool `json:"door_open,omitempty"`
}

// Actuator drives the vehicle's outputs. Implementations are safe for
// concurrent use.
type Actuator interface {
	// Unlock sends the unlock pulse and records the state as unlocked.
	Unlock(ctx context.Context) error
	// Lock sends the lock pulse and records the state as locked.
	Lock(ctx context.Context) error
	// AuthorizeEngineStart grants the engine controller a start permission
	// for the configured window; it ends by itself.
	AuthorizeEngineStart(ctx context.Context) error
	// Feedback plays a pattern on the LED and buzzer (best effort).
	Feedback(ctx context.Context, p Pattern) error
	// State reports the current state.
	State() State
	// Close leaves every output inactive and releases the lines.
	Close() error
}
