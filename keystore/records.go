package keystore

import (
	"fmt"
	"time"

	"github.com/dkvehicled/dkvehicled/internal/secret"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

// Role is an endpoint's role.
type Role string

// Roles.
const (
	RoleOwner  Role = "owner"
	RoleFriend Role = "friend"
)

// State is an endpoint's state.
type State string

// Endpoint states.
const (
	StateActive     State = "active"
	StateSuspended  State = "suspended"
	StateTerminated State = "terminated"
)

// SlotState is a slot's state.
type SlotState string

// Slot states.
const (
	SlotIssued  SlotState = "issued"
	SlotBound   SlotState = "bound"
	SlotRevoked SlotState = "revoked"
)

// Endpoint is one phone key the vehicle knows.
type Endpoint struct {
	KeyID     keys.KeyID
	PublicKey []byte
	// SlotID is the slot the key is bound to (nil in the homekey profile).
	SlotID       []byte
	Role         Role
	Profile      int
	State        State
	Kpersistent  secret.Bytes // nil until the first standard transaction
	NotBefore    time.Time    // zero: no lower bound
	NotAfter     time.Time    // zero: no upper bound
	FriendlyName string
	LTSS         secret.Bytes // the owner's, from pairing
	// StoreOrder is the order in which keys were stored (0, 1, 2 ...); it
	// breaks ties in the fast path. Assigned by PutEndpoint for new keys.
	StoreOrder int
	Created    time.Time
	LastUsed   time.Time // zero: never used successfully
}

// InWindow reports whether now lies in the validity window (inclusive).
func (e *Endpoint) InWindow(now time.Time) bool {
	if !e.NotBefore.IsZero() && now.Before(e.NotBefore) {
		return false
	}
	return e.NotAfter.IsZero() || !now.After(e.NotAfter)
}

// Slot is one slot identifier the vehicle issued.
type Slot struct {
	ID []byte
	// Entry is the owner's mailbox entry it was issued for (0 = the owner's own).
	Entry         int
	IssuedTo      keys.KeyID
	BoundEndpoint *keys.KeyID
	Token         secret.Bytes
	State         SlotState
}

// Verifier is the pairing verifier (PROTOCOL.md 6.2).
type Verifier struct {
	W0           secret.Bytes
	L            secret.Bytes
	Salt         []byte
	N, R, P      int
	AttemptsLeft int
}

// Identity records which vehicle the store belongs to, so that a store is
// never used with another vehicle's keys by mistake.
type Identity struct {
	Profile           string `json:"profile"`
	VehicleIdentifier []byte `json:"vehicle_identifier"`
	VehiclePK         []byte `json:"vehicle_pk"`
}

// The on-disk forms of endpoints and slots (see codec.go). Secrets are
// written with Expose: secret.Bytes refuses every other rendering.

func encodeEndpoint(e *Endpoint) ([]byte, error) {
	w := newEncoder()
	w.bytes(e.PublicKey)
	w.bytes(e.SlotID)
	w.str(string(e.Role))
	w.int(e.Profile)
	w.str(string(e.State))
	w.bytes(e.Kpersistent.Expose())
	w.time(e.NotBefore)
	w.time(e.NotAfter)
	w.str(e.FriendlyName)
	w.bytes(e.LTSS.Expose())
	w.int(e.StoreOrder)
	w.time(e.Created)
	w.time(e.LastUsed)
	return w.b, nil
}

func decodeEndpoint(id, b []byte) (*Endpoint, error) {
	if len(id) != len(keys.KeyID{}) {
		return nil, fmt.Errorf("%w: endpoint key %x", ErrCorrupt, id)
	}
	r := newDecoder(b)
	e := &Endpoint{KeyID: keys.KeyID(id)}
	e.PublicKey = r.bytes()
	e.SlotID = r.bytes()
	e.Role = Role(r.str())
	e.Profile = r.int()
	e.State = State(r.str())
	e.Kpersistent = r.bytes()
	e.NotBefore = r.time()
	e.NotAfter = r.time()
	e.FriendlyName = r.str()
	e.LTSS = r.bytes()
	e.StoreOrder = r.int()
	e.Created = r.time()
	e.LastUsed = r.time()
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("%w: endpoint %x: %v", ErrCorrupt, id, err)
	}
	return e, nil
}

func encodeSlot(s *Slot) ([]byte, error) {
	w := newEncoder()
	w.int(s.Entry)
	w.bytes(s.IssuedTo[:])
	var bound []byte
	if s.BoundEndpoint != nil {
		bound = s.BoundEndpoint[:]
	}
	w.bytes(bound)
	w.bytes(s.Token.Expose())
	w.str(string(s.State))
	return w.b, nil
}

func decodeSlot(id, b []byte) (*Slot, error) {
	r := newDecoder(b)
	s := &Slot{ID: append([]byte(nil), id...)}
	s.Entry = r.int()
	issued := r.bytes()
	bound := r.bytes()
	s.Token = r.bytes()
	s.State = SlotState(r.str())
	err := r.done()
	if err == nil && (len(issued) != len(keys.KeyID{}) || (bound != nil && len(bound) != len(keys.KeyID{}))) {
		err = errRecord
	}
	if err != nil {
		return nil, fmt.Errorf("%w: slot %x: %v", ErrCorrupt, id, err)
	}
	s.IssuedTo = keys.KeyID(issued)
	if bound != nil {
		k := keys.KeyID(bound)
		s.BoundEndpoint = &k
	}
	return s, nil
}

type verifierRecord struct {
	W0           []byte `json:"w0"`
	L            []byte `json:"L"`
	Salt         []byte `json:"salt"`
	N            int    `json:"N"`
	R            int    `json:"r"`
	P            int    `json:"p"`
	AttemptsLeft int    `json:"attempts_left"`
}
