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
	"time"
)

// LockState is the state of the door locks as the vehicle knows it.
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

// State is what an actuator reports for status.
type State struct {
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
