// Package policy decides whether a key may do an action at a reader now. It
// holds the access profiles from configuration (PROTOCOL.md 5a) and is a pure
// function of its inputs: no store, no clock, no I/O.
package policy

import (
	"fmt"
	"sort"
	"time"

	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// Action is what a tap asks the vehicle to do.
type Action string

// Actions.
const (
	ActionUnlock      Action = "unlock"
	ActionLock        Action = "lock"
	ActionEngineStart Action = "engine_start"
)

// Role is where a reader sits.
type Role string

// Reader roles.
const (
	RoleDoor      Role = "door"
	RoleDashboard Role = "dashboard"
)

// ParseRole checks a configured reader role.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleDoor, RoleDashboard:
		return r, nil
	}
	return "", fmt.Errorf("reader role %q: want door or dashboard", s)
}

// TransactionCode is the AUTH0 P2 a reader of this role sends.
func (r Role) TransactionCode() byte {
	if r == RoleDashboard {
		return wire.TxEngineStart
	}
	return wire.TxAccess
}

// ActionAt is the action a tap asks for at a reader: the door handle unlocks a
// locked vehicle and locks an unlocked one; the dashboard starts the engine.
func ActionAt(r Role, locked bool) Action {
	switch {
	case r == RoleDashboard:
		return ActionEngineStart
	case locked:
		return ActionUnlock
	}
	return ActionLock
}

// Profile is one access profile.
type Profile struct {
	ID     int    `json:"id" toml:"id"`
	Name   string `json:"name" toml:"name"`
	Access bool   `json:"access" toml:"access"` // unlock and lock
	Engine bool   `json:"engine" toml:"engine"` // engine start ("drive")
	// SpeedLimitKPH restricts driving (0: none). It never appears on the wire:
	// the daemon reports it with the outcome for the vehicle to enforce.
	SpeedLimitKPH int `json:"speed_limit_kph,omitempty" toml:"speed_limit_kph"`
}

// Defaults are the profiles of PROTOCOL.md 5a, used by the vectors.
func Defaults() []Profile {
	return []Profile{
		{ID: 0, Name: "owner", Access: true, Engine: true},
		{ID: 1, Name: "access only", Access: true},
		{ID: 2, Name: "access and drive", Access: true, Engine: true},
		{ID: 3, Name: "access and drive restricted", Access: true, Engine: true, SpeedLimitKPH: 80},
	}
}

// Profiles is a validated set of profiles.
type Profiles struct {
	list []Profile
	byID map[int]Profile
}

// NewProfiles validates profiles: ids 0 to 255, unique, named.
func NewProfiles(ps []Profile) (*Profiles, error) {
	p := &Profiles{byID: make(map[int]Profile, len(ps))}
	for _, x := range ps {
		switch {
		case x.ID < 0 || x.ID > 255:
			return nil, fmt.Errorf("access profile %d: id must be 0 to 255", x.ID)
		case x.Name == "":
			return nil, fmt.Errorf("access profile %d: no name", x.ID)
		case x.SpeedLimitKPH < 0:
			return nil, fmt.Errorf("access profile %d: negative speed limit", x.ID)
		}
		if _, dup := p.byID[x.ID]; dup {
			return nil, fmt.Errorf("access profile %d: defined twice", x.ID)
		}
		p.byID[x.ID] = x
		p.list = append(p.list, x)
	}
	sort.Slice(p.list, func(i, j int) bool { return p.list[i].ID < p.list[j].ID })
	return p, nil
}

// Get returns the profile with id.
func (p *Profiles) Get(id int) (Profile, bool) {
	x, ok := p.byID[id]
	return x, ok
}

// List returns the profiles ordered by id.
func (p *Profiles) List() []Profile { return append([]Profile(nil), p.list...) }

// Key is what the policy needs to know about a key.
type Key struct {
	Profile   int
	Active    bool      // not suspended or terminated
	NotBefore time.Time // zero: open
	NotAfter  time.Time // zero: open
}

// InWindow reports whether now lies in the key's validity window, inclusive at
// both ends.
func (k Key) InWindow(now time.Time) bool {
	if !k.NotBefore.IsZero() && now.Before(k.NotBefore) {
		return false
	}
	return k.NotAfter.IsZero() || !now.After(k.NotAfter)
}

// Decision is the policy's answer.
type Decision struct {
	Allowed bool
	// Reason is the CONTROL FLOW reason of a denial (none when allowed).
	Reason wire.Reason
	// SpeedLimitKPH is the profile's limit on an allowed engine start.
	SpeedLimitKPH int
	// Detail says why, for events and logs.
	Detail string
}

// Decide applies, in order: the key's state, its validity window, the
// existence of its profile and the profile's permission for the action.
func Decide(ps *Profiles, k Key, a Action, now time.Time) Decision {
	if !k.Active {
		return Decision{Reason: wire.ReasonKeyNotValid, Detail: "key suspended or terminated"}
	}
	if !k.InWindow(now) {
		return Decision{Reason: wire.ReasonKeyNotValid, Detail: "outside the key's validity window"}
	}
	p, ok := ps.Get(k.Profile)
	if !ok {
		return Decision{Reason: wire.ReasonNotPermitted, Detail: fmt.Sprintf("access profile %d is not configured", k.Profile)}
	}
	allowed := p.Access
	if a == ActionEngineStart {
		allowed = p.Engine
	}
	if !allowed {
		return Decision{Reason: wire.ReasonNotPermitted, Detail: fmt.Sprintf("profile %q does not allow %s", p.Name, a)}
	}
	d := Decision{Allowed: true}
	if a == ActionEngineStart {
		d.SpeedLimitKPH = p.SpeedLimitKPH
	}
	return d
}
