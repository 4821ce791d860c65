package keystore

import (
	"encoding/json"
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

// The on-disk forms use plain byte slices: secret.Bytes refuses to marshal.

type endpointRecord struct {
	PublicKey    []byte    `json:"pk"`
	SlotID       []byte    `json:"slot,omitempty"`
	Role         Role      `json:"role"`
	Profile      int       `json:"profile"`
	State        State     `json:"state"`
	Kpersistent  []byte    `json:"kp,omitempty"`
	NotBefore    time.Time `json:"nb,omitzero"`
	NotAfter     time.Time `json:"na,omitzero"`
	FriendlyName string    `json:"name"`
	LTSS         []byte    `json:"ltss,omitempty"`
	StoreOrder   int       `json:"order"`
	Created      time.Time `json:"created"`
	LastUsed     time.Time `json:"last_used,omitzero"`
}

func encodeEndpoint(e *Endpoint) ([]byte, error) {
	return json.Marshal(endpointRecord{
		PublicKey: e.PublicKey, SlotID: e.SlotID, Role: e.Role, Profile: e.Profile, State: e.State,
		Kpersistent: e.Kpersistent, NotBefore: e.NotBefore, NotAfter: e.NotAfter,
		FriendlyName: e.FriendlyName, LTSS: e.LTSS, StoreOrder: e.StoreOrder,
		Created: e.Created, LastUsed: e.LastUsed,
	})
}

func decodeEndpoint(id, b []byte) (*Endpoint, error) {
	var r endpointRecord
	if err := json.Unmarshal(b, &r); err != nil || len(id) != len(keys.KeyID{}) {
		return nil, fmt.Errorf("%w: endpoint %x: %v", ErrCorrupt, id, err)
	}
	return &Endpoint{
		KeyID: keys.KeyID(id), PublicKey: r.PublicKey, SlotID: r.SlotID, Role: r.Role,
		Profile: r.Profile, State: r.State, Kpersistent: r.Kpersistent,
		NotBefore: r.NotBefore, NotAfter: r.NotAfter, FriendlyName: r.FriendlyName,
		LTSS: r.LTSS, StoreOrder: r.StoreOrder, Created: r.Created, LastUsed: r.LastUsed,
	}, nil
}

type slotRecord struct {
	Entry    int       `json:"entry"`
	IssuedTo []byte    `json:"issued_to"`
	Bound    []byte    `json:"bound,omitempty"`
	Token    []byte    `json:"token"`
	State    SlotState `json:"state"`
}

func encodeSlot(s *Slot) ([]byte, error) {
	r := slotRecord{Entry: s.Entry, IssuedTo: s.IssuedTo[:], Token: s.Token, State: s.State}
	if s.BoundEndpoint != nil {
		r.Bound = s.BoundEndpoint[:]
	}
	return json.Marshal(r)
}

func decodeSlot(id, b []byte) (*Slot, error) {
	var r slotRecord
	if err := json.Unmarshal(b, &r); err != nil || len(r.IssuedTo) != len(keys.KeyID{}) ||
		(r.Bound != nil && len(r.Bound) != len(keys.KeyID{})) {
		return nil, fmt.Errorf("%w: slot %x: %v", ErrCorrupt, id, err)
	}
	s := &Slot{ID: append([]byte(nil), id...), Entry: r.Entry, IssuedTo: keys.KeyID(r.IssuedTo), Token: r.Token, State: r.State}
	if r.Bound != nil {
		k := keys.KeyID(r.Bound)
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
