// Package control is dkvehicled's local control API: a Unix socket speaking
// newline-delimited JSON, the server that guards it (peer credentials checked
// with SO_PEERCRED against the configured uids and gids), and the client that
// dkctl and the end-to-end tests use. The verbs and their arguments are
// defined here; the daemon implements Handler.
package control

import (
	"context"
	"encoding/json"
	"math"
	"time"
)

// Request is one line from a client.
type Request struct {
	ID   uint64          `json:"id"`
	Verb string          `json:"verb"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Response is one line to a client: the answer to a request (OK with Result,
// or Error), or one Event of a stream opened by the "events" verb.
type Response struct {
	ID     uint64          `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
	Event  *Event          `json:"event,omitempty"`
	// Dropped counts events this stream lost because the client read too
	// slowly; it is set on the next event delivered.
	Dropped uint64 `json:"dropped,omitempty"`
}

// Error is a failed request. Code is stable and machine-readable; Message is
// for people and never contains secrets.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Error codes.
const (
	CodeBadRequest       = "bad_request"        // malformed JSON, bad arguments
	CodeUnknownVerb      = "unknown_verb"       // no such verb
	CodeTooLarge         = "too_large"          // request line over the limit
	CodePermissionDenied = "permission_denied"  // peer not allowed
	CodeBusy             = "busy"               // too many connections
	CodeUnknownKey       = "unknown_key"        // no such key, slot, reader, profile or phone
	CodeNotPermitted     = "not_permitted"      // the change is not allowed (e.g. an owner's profile)
	CodeSimulatorOff     = "simulator_disabled" // sim verbs without the simulator
	CodeDisabled         = "disabled"           // a bench verb the configuration does not allow
	CodeInternal         = "internal"           // the daemon failed; see its log
	CodeTimeout          = "timeout"            // the daemon did not finish in time
)

// Errorf builds an *Error.
func Errorf(code, message string) *Error { return &Error{Code: code, Message: message} }

// Verbs.
const (
	VerbStatus          = "status"               // -> Status
	VerbVehicle         = "vehicle.show"         // -> VehicleInfo
	VerbDigitalKey      = "vehicle.digital_key"  // SwitchArgs -> Status
	VerbReaderEnable    = "reader.enable"        // ReaderEnableArgs -> Status
	VerbKeysList        = "keys.list"            // -> []Key
	VerbKeysShow        = "keys.show"            // KeyArgs -> Key
	VerbKeysRevoke      = "keys.revoke"          // KeyArgs -> Key
	VerbKeysSuspend     = "keys.suspend"         // KeyArgs -> Key
	VerbKeysResume      = "keys.resume"          // KeyArgs -> Key
	VerbKeysRename      = "keys.rename"          // RenameArgs -> Key
	VerbKeysProfile     = "keys.set_profile"     // ProfileArgs -> Key (friends only)
	VerbKeysWindow      = "keys.set_window"      // WindowArgs -> Key (friends only)
	VerbSlotsList       = "slots.list"           // -> []Slot
	VerbSlotsRevoke     = "slots.revoke"         // SlotArgs -> Slot (issued, unbound slots)
	VerbProfiles        = "profiles.list"        // -> []Profile
	VerbAudit           = "audit"                // AuditArgs -> []AuditEntry
	VerbEvents          = "events"               // opens a stream of Event
	VerbMetrics         = "metrics"              // -> Metrics (Prometheus text)
	VerbStoreCheck      = "store.check"          // -> StoreCheck
	VerbPairingVerifier = "pairing.verifier"     // VerifierArgs -> PairingStatus (a new verifier: 7 attempts)
	VerbPairingStart    = "pairing.start"        // PairingStartArgs -> PairingStatus
	VerbPairingCancel   = "pairing.cancel"       // -> PairingStatus
	VerbPairingStatus   = "pairing.status"       // -> PairingStatus
	VerbSimPassword     = "sim.pairing_password" // SimPasswordArgs -> SimPhone (the owner typed the password on the phone)
	VerbEnrolOwner      = "enrol.owner"          // EnrolArgs -> Enrolment (bench: direct enrolment, when the configuration allows it)
	VerbSimPhones       = "sim.phones"           // -> []SimPhone
	VerbSimNewPhone     = "sim.phone.new"        // SimPhoneArgs -> SimPhone
	VerbSimEnrolOwner   = "sim.enrol_owner"      // SimPhoneArgs -> Key (direct enrolment of a simulated phone)
	VerbSimPlace        = "sim.place"            // SimPlaceArgs -> SimReader
	VerbSimRemove       = "sim.remove"           // SimReaderArgs -> SimReader
	VerbSimTap          = "sim.tap"              // SimPlaceArgs -> Event (place, wait for the tap's event, remove)
	VerbSimShare        = "sim.share"            // SimShareArgs -> SimShare
)

// KeyArgs names a key by its identifier (40 hex digits) or a unique prefix
// of at least 8 digits.
type KeyArgs struct {
	KeyID string `json:"key_id"`
}

// RenameArgs sets a key's friendly name (at most 32 bytes of UTF-8).
type RenameArgs struct {
	KeyID string `json:"key_id"`
	Name  string `json:"name"`
}

// ProfileArgs changes a friend key's access profile.
type ProfileArgs struct {
	KeyID   string `json:"key_id"`
	Profile int    `json:"profile"`
}

// WindowArgs changes a friend key's validity window (RFC 3339 times; empty
// means open on that side).
type WindowArgs struct {
	KeyID     string `json:"key_id"`
	NotBefore string `json:"not_before"`
	NotAfter  string `json:"not_after"`
}

// SlotArgs names a slot by its hex identifier.
type SlotArgs struct {
	Slot string `json:"slot"`
}

// SwitchArgs turns the vehicle-wide digital-key switch on or off.
type SwitchArgs struct {
	Enabled bool   `json:"enabled"`
	Reason  string `json:"reason,omitempty"` // e.g. "valet", shown in status and events
}

// ReaderEnableArgs enables or disables one reader.
type ReaderEnableArgs struct {
	Reader  string `json:"reader"`
	Enabled bool   `json:"enabled"`
}

// AuditArgs selects the newest audit entries (default 50).
type AuditArgs struct {
	Limit int `json:"limit,omitempty"`
}

// VerifierArgs gives the vehicle a new pairing verifier: either the file the
// OEM's server made (dkpki verifier), or, on a bench, the 8-digit password
// from which the vehicle derives the verifier itself. The daemon never
// sends either back.
type VerifierArgs struct {
	File     string `json:"file,omitempty"` // the file's contents
	Password string `json:"password,omitempty"`
}

// PairingStartArgs starts pairing mode; the timeout is in seconds (0: the
// configured default).
type PairingStartArgs struct {
	TimeoutS int `json:"timeout_s,omitempty"`
}

// PairingStatus is the state of owner pairing.
type PairingStatus struct {
	// Available is false when the configuration lacks the vehicle
	// certificate or the vehicle OEM root.
	Available    bool      `json:"available"`
	Mode         bool      `json:"mode"`
	Until        time.Time `json:"until,omitzero"`
	Verifier     bool      `json:"verifier"`
	AttemptsLeft int       `json:"attempts_left"`
}

// SimPasswordArgs types the pairing password on a simulated phone.
type SimPasswordArgs struct {
	Phone    string `json:"phone"`
	Password string `json:"password"`
}

// EnrolArgs enrols a phone's key as the owner directly (bench use): the
// public key the phone made for this vehicle, 65 bytes uncompressed, in hex.
type EnrolArgs struct {
	PublicKey string `json:"public_key"`
	Name      string `json:"name"`
}

// Enrolment is what a phone needs from the vehicle after direct enrolment:
// nothing secret. The owner's immobilizer token reaches the phone at its
// first dashboard tap, through the secure channel.
type Enrolment struct {
	KeyID             string `json:"key_id"`
	VehicleIdentifier string `json:"vehicle_identifier"`
	VehiclePublicKey  string `json:"vehicle_public_key"`
	Slot              string `json:"slot"`
	Profile           string `json:"profile"` // the protocol profile, ccc
}

// SimPhoneArgs names a simulated phone.
type SimPhoneArgs struct {
	Phone string `json:"phone"`
}

// SimReaderArgs names a simulated reader.
type SimReaderArgs struct {
	Reader string `json:"reader"`
}

// SimPlaceArgs puts a simulated phone on a simulated reader.
type SimPlaceArgs struct {
	Phone  string `json:"phone"`
	Reader string `json:"reader"`
	// LatencyMS delays every answer of the phone, as a slow NFC link would.
	LatencyMS int `json:"latency_ms,omitempty"`
	// DropAt, when set, pulls the phone away as command DropAt (counted
	// from 0) arrives: that command and every later one go unanswered.
	DropAt *int `json:"drop_at,omitempty"`
}

// SimShareArgs has one simulated phone (an owner) share a key offline with
// another; the times are RFC 3339 (empty: now and 30 days on).
type SimShareArgs struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Profile   int    `json:"profile"`
	Name      string `json:"name"`
	NotBefore string `json:"not_before,omitempty"`
	NotAfter  string `json:"not_after,omitempty"`
}

// Status is the daemon's state at a glance.
type Status struct {
	Version           string        `json:"version"`
	Uptime            Duration      `json:"uptime"`
	Profile           string        `json:"profile"`
	VehicleIdentifier string        `json:"vehicle_identifier"`
	DigitalKeyEnabled bool          `json:"digital_key_enabled"`
	DisabledReason    string        `json:"disabled_reason,omitempty"`
	Readers           []Reader      `json:"readers"`
	Store             StoreStats    `json:"store"`
	Actuators         ActuatorState `json:"actuators"`
	Pairing           PairingStatus `json:"pairing"`
	Simulator         bool          `json:"simulator"`
}

// Reader is one configured reader.
type Reader struct {
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	Backend    string    `json:"backend"`
	Enabled    bool      `json:"enabled"`
	OK         bool      `json:"ok"`
	Detail     string    `json:"detail,omitempty"`
	Firmware   string    `json:"firmware,omitempty"`
	ECP        bool      `json:"ecp"`
	Since      time.Time `json:"since"`
	Errors     uint64    `json:"errors"`
	Recoveries uint64    `json:"recoveries"`
	Taps       uint64    `json:"taps"`
	LastTap    time.Time `json:"last_tap,omitzero"`
	// CardPresent is set while a card lies in the reader's field.
	CardPresent bool `json:"card_present"`
}

// StoreStats are the store's counts.
type StoreStats struct {
	Path         string `json:"path"`
	Owner        string `json:"owner,omitempty"`
	Endpoints    int    `json:"endpoints"`
	Active       int    `json:"active"`
	Slots        int    `json:"slots"`
	IssuedSlots  int    `json:"issued_slots"`
	AuditEntries int    `json:"audit_entries"`
	FileBytes    int64  `json:"file_bytes"`
}

// ActuatorState is the vehicle's outputs as the daemon knows them.
type ActuatorState struct {
	Lock                  string    `json:"lock"`
	EngineAuthorizedUntil time.Time `json:"engine_authorized_until,omitzero"`
	DoorOpen              *bool     `json:"door_open,omitempty"`
}

// VehicleInfo is the vehicle's public identity.
type VehicleInfo struct {
	Profile             string `json:"profile"`
	VehicleIdentifier   string `json:"vehicle_identifier"`
	VehiclePublicKey    string `json:"vehicle_public_key"`
	CertificateSHA256   string `json:"certificate_sha256,omitempty"`
	OEMRootSHA256       string `json:"oem_root_sha256,omitempty"`
	SlotIDLen           int    `json:"slot_id_len"`
	ImmobilizerTokenLen int    `json:"immobilizer_token_len"`
}

// Key is a stored key, without any secret.
type Key struct {
	KeyID          string    `json:"key_id"`
	Role           string    `json:"role"`
	FriendlyName   string    `json:"friendly_name"`
	Profile        int       `json:"profile"`
	ProfileName    string    `json:"profile_name"`
	State          string    `json:"state"`
	Slot           string    `json:"slot,omitempty"`
	SlotState      string    `json:"slot_state,omitempty"`
	NotBefore      time.Time `json:"not_before,omitzero"`
	NotAfter       time.Time `json:"not_after,omitzero"`
	Created        time.Time `json:"created"`
	LastUsed       time.Time `json:"last_used,omitzero"`
	HasKpersistent bool      `json:"has_kpersistent"`      // fast path possible
	PublicKey      string    `json:"public_key,omitempty"` // keys.show only
}

// Slot is a slot of the slot table, without its token.
type Slot struct {
	Slot          string `json:"slot"`
	Entry         int    `json:"entry"`
	IssuedTo      string `json:"issued_to"`
	BoundEndpoint string `json:"bound_endpoint,omitempty"`
	State         string `json:"state"`
}

// Profile is a configured access profile.
type Profile struct {
	ID            int    `json:"id"`
	Name          string `json:"name"`
	Access        bool   `json:"access"`
	Engine        bool   `json:"engine"`
	SpeedLimitKPH int    `json:"speed_limit_kph,omitempty"`
}

// Phase is the time one part of a tap took.
type Phase struct {
	Name string   `json:"name"`
	Time Duration `json:"time"`
}

// Event is something that happened: a tap at a reader, a key management
// action, a reader's health changing, a switch flipped.
type Event struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Type string    `json:"type"` // tap, key, reader, vehicle
	// Taps.
	Reader        string   `json:"reader,omitempty"`
	Role          string   `json:"role,omitempty"`
	Result        string   `json:"result,omitempty"` // allowed, denied, error, no_key
	Path          string   `json:"path,omitempty"`
	KeyID         string   `json:"key_id,omitempty"`
	Slot          string   `json:"slot,omitempty"`
	KeyRole       string   `json:"key_role,omitempty"`
	FriendlyName  string   `json:"friendly_name,omitempty"`
	Action        string   `json:"action,omitempty"`
	Reason        string   `json:"reason,omitempty"`
	Detail        string   `json:"detail,omitempty"`
	Actuated      bool     `json:"actuated,omitempty"`
	SpeedLimitKPH int      `json:"speed_limit_kph,omitempty"`
	FirstUse      bool     `json:"first_use,omitempty"`
	Provisioned   int      `json:"provisioned,omitempty"`
	Total         Duration `json:"total,omitempty"`
	Phases        []Phase  `json:"phases,omitempty"`
	// Key management and switches: who did it (uid of the socket peer).
	By *uint32 `json:"by,omitempty"`
}

// AuditEntry is one entry of the audit log in the store.
type AuditEntry struct {
	Seq   uint64 `json:"seq"`
	Event Event  `json:"event"`
}

// Metrics is the Prometheus text exposition.
type Metrics struct {
	Text string `json:"text"`
}

// StoreCheck is the result of the store's consistency check: one line per
// problem found (none when the store is consistent) and the counts checked.
type StoreCheck struct {
	Path     string   `json:"path"`
	Keys     int      `json:"keys"`
	Slots    int      `json:"slots"`
	Problems []string `json:"problems"`
}

// SimPhone is a simulated phone and its keys.
type SimPhone struct {
	Name   string   `json:"name"`
	Keys   []string `json:"keys"` // key identifiers, one per vehicle
	Reader string   `json:"reader,omitempty"`
}

// SimReader is a simulated reader and what lies on it.
type SimReader struct {
	Reader string `json:"reader"`
	Phone  string `json:"phone,omitempty"`
}

// SimShare is the result of an offline share.
type SimShare struct {
	From       string `json:"from"`
	To         string `json:"to"`
	FriendKey  string `json:"friend_key"`
	Slot       string `json:"slot"`
	MovedEntry int    `json:"moved_entry"`
}

// Duration marshals as a number of microseconds and a readable string.
type Duration time.Duration

// MarshalJSON writes microseconds as a JSON number (fractions kept).
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(float64(time.Duration(d).Nanoseconds()) / 1e3)
}

// UnmarshalJSON reads microseconds, to the nearest nanosecond (truncating
// would lose one now and then: 1.001 µs × 1e3 is 1000.9999…).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var us float64
	if err := json.Unmarshal(b, &us); err != nil {
		return err
	}
	*d = Duration(math.Round(us * 1e3))
	return nil
}

// Peer is the credentials of a connected client, from SO_PEERCRED.
type Peer struct {
	PID uint32
	UID uint32
	GID uint32
}

// Handler is what the server needs from the daemon.
type Handler interface {
	// Handle runs one request. It returns a value to marshal as the result,
	// or an error: an *Error is passed to the client as is, anything else
	// becomes CodeInternal with a generic message (the detail goes to the
	// daemon's log, never to the socket).
	Handle(ctx context.Context, peer Peer, verb string, args json.RawMessage) (any, error)
	// Subscribe opens an event stream for the "events" verb.
	Subscribe() Subscription
}

// Subscription is one open event stream. The daemon never blocks on a slow
// subscriber: when its buffer is full, events are dropped and counted.
type Subscription interface {
	// Events delivers events in order; it is closed when the daemon shuts
	// down or after Stop.
	Events() <-chan Event
	// Dropped is the number of events lost so far.
	Dropped() uint64
	// Stop ends the subscription.
	Stop()
}
