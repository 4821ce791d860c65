package transaction

import (
	"errors"
	"time"

	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/reader"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// Request is what the daemon knows about a tap before it starts.
type Request struct {
	// Role is the reader's role: door (access) or dashboard (engine start).
	Role policy.Role
	// Locked is the current lock state; a door tap unlocks a locked vehicle
	// and locks an unlocked one.
	Locked bool
	// Disabled ends the tap right after SELECT with CONTROL FLOW 00 08: the
	// vehicle-wide digital-key switch is off or this reader is disabled.
	Disabled bool
}

// Result classifies an outcome.
type Result string

// Results.
const (
	// ResultAllowed: the whole transaction succeeded; actuate.
	ResultAllowed Result = "allowed"
	// ResultDenied: a key was refused (CONTROL FLOW failure with a reason).
	ResultDenied Result = "denied"
	// ResultError: the protocol failed, timed out, or the phone left.
	ResultError Result = "error"
	// ResultNoKey: the card has no digital-key applet (SELECT failed).
	ResultNoKey Result = "no_key"
)

// Path is the way the vehicle authenticated the endpoint.
type Path string

// Paths, as the vectors classify them.
const (
	PathNone           Path = "none"
	PathFast           Path = "fast"
	PathStandard       Path = "standard"
	PathFriendFirstUse Path = "standard+friend_first_use"
)

// Phase is the time spent in one part of a transaction.
type Phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration"`
}

// Outcome is the result of one tap.
type Outcome struct {
	Result Result
	Path   Path
	// KeyID names the key when one was identified (nil otherwise).
	KeyID        *keys.KeyID
	SlotID       []byte
	Role         string // "owner" or "friend" when known
	FriendlyName string
	// Action is what the tap asked for; the vehicle does it only if Allowed.
	Action policy.Action
	// Reason is the CONTROL FLOW reason (none when allowed).
	Reason wire.Reason
	// Detail says what happened, for events and logs. It never holds secrets.
	Detail string
	// Err wraps one of the package's sentinel errors on every failure.
	Err error
	// ControlFlow is the CONTROL FLOW command sent (nil when none was).
	ControlFlow []byte
	// SpeedLimitKPH is the driving restriction of an allowed engine start.
	SpeedLimitKPH int
	// FirstUse is set when a friend's key was stored by this tap.
	FirstUse bool
	// Provisioned counts slot entries written to the owner's phone.
	Provisioned int
	Phases      []Phase
	Total       time.Duration
}

// Allowed reports whether the vehicle should act.
func (o *Outcome) Allowed() bool { return o.Result == ResultAllowed }

// Sentinel errors wrapped in Outcome.Err.
var (
	ErrNoApplet      = errors.New("no digital key applet on the card")
	ErrUnknownKey    = errors.New("unknown key")
	ErrKeyNotValid   = errors.New("key not valid now")
	ErrNotPermitted  = errors.New("action not permitted by the key's profile")
	ErrAttestation   = errors.New("friend attestation rejected")
	ErrTokenMismatch = errors.New("immobilizer token mismatch")
	ErrProtocol      = errors.New("protocol error")
	ErrTimeout       = errors.New("timeout")
	ErrDisabled      = errors.New("digital key disabled")
	// ErrCardGone is reader.ErrCardGone: the phone left mid-transaction.
	ErrCardGone = reader.ErrCardGone
)

var reasonErr = map[wire.Reason]error{
	wire.ReasonUnknownKey:    ErrUnknownKey,
	wire.ReasonKeyNotValid:   ErrKeyNotValid,
	wire.ReasonNotPermitted:  ErrNotPermitted,
	wire.ReasonAttestation:   ErrAttestation,
	wire.ReasonTokenMismatch: ErrTokenMismatch,
	wire.ReasonProtocol:      ErrProtocol,
	wire.ReasonTimeout:       ErrTimeout,
	wire.ReasonDisabled:      ErrDisabled,
}
