package keystore

import (
	"bytes"
	"fmt"
)

// Check verifies the store's own invariants (the schema rules of
// PROTOCOL.md 2 and vectors/README.md) and returns every violation found:
// a bound slot names an existing endpoint that carries that slot; an issued
// slot is bound to nothing; a revoked slot is unbound or bound to a
// terminated endpoint; every endpoint with a slot is its slot's bound
// endpoint; the owner exists and has the owner role; store orders are unique.
func (t *Tx) Check() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	eps, err := t.Endpoints()
	if err != nil {
		return []error{err}
	}
	slots, err := t.Slots()
	if err != nil {
		return []error{err}
	}
	byKey := make(map[[20]byte]*Endpoint, len(eps))
	orders := make(map[int]bool, len(eps))
	for _, e := range eps {
		byKey[e.KeyID] = e
		if orders[e.StoreOrder] {
			add("endpoint %s: store order %d used twice", e.KeyID, e.StoreOrder)
		}
		orders[e.StoreOrder] = true
		switch e.State {
		case StateActive, StateSuspended, StateTerminated:
		default:
			add("endpoint %s: unknown state %q", e.KeyID, e.State)
		}
		if e.Role != RoleOwner && e.Role != RoleFriend {
			add("endpoint %s: unknown role %q", e.KeyID, e.Role)
		}
	}
	bySlot := make(map[string]*Slot, len(slots))
	for _, s := range slots {
		bySlot[string(s.ID)] = s
		if _, ok := byKey[s.IssuedTo]; !ok {
			add("slot %x: issued to unknown endpoint %s", s.ID, s.IssuedTo)
		}
		switch s.State {
		case SlotIssued:
			if s.BoundEndpoint != nil {
				add("slot %x: issued but bound to %s", s.ID, *s.BoundEndpoint)
			}
		case SlotBound, SlotRevoked:
			if s.BoundEndpoint == nil {
				if s.State == SlotBound {
					add("slot %x: bound to nothing", s.ID)
				}
				continue
			}
			e, ok := byKey[*s.BoundEndpoint]
			switch {
			case !ok:
				add("slot %x: bound to unknown endpoint %s", s.ID, *s.BoundEndpoint)
			case !bytes.Equal(e.SlotID, s.ID):
				add("slot %x: bound to %s, which names slot %x", s.ID, e.KeyID, e.SlotID)
			case s.State == SlotRevoked && e.State != StateTerminated:
				add("slot %x: revoked but its endpoint %s is %s", s.ID, e.KeyID, e.State)
			}
		default:
			add("slot %x: unknown state %q", s.ID, s.State)
		}
	}
	for _, e := range eps {
		if e.SlotID == nil {
			continue
		}
		s, ok := bySlot[string(e.SlotID)]
		if !ok {
			add("endpoint %s: names unknown slot %x", e.KeyID, e.SlotID)
		} else if s.BoundEndpoint == nil || *s.BoundEndpoint != e.KeyID {
			add("endpoint %s: slot %x is not bound to it", e.KeyID, e.SlotID)
		}
	}
	if owner, ok := t.Owner(); ok {
		if e, found := byKey[owner]; !found {
			add("owner %s: no such endpoint", owner)
		} else if e.Role != RoleOwner {
			add("owner %s: role %s", owner, e.Role)
		}
	}
	return errs
}
