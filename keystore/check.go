package keystore

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// Check verifies the store's own invariants (the schema rules of
// PROTOCOL.md 2 and vectors/README.md) and returns every violation found:
// a bound slot names an existing endpoint that carries that slot; an issued
// slot is bound to nothing; a revoked slot is unbound or bound to a
// terminated endpoint; every endpoint with a slot is its slot's bound
// endpoint; the owner exists and has the owner role; store orders are unique.
// It also checks what the code relies on beyond the schema: an endpoint is
// stored under its public key's identifier; its store order is below the
// next one to be assigned; no two endpoints name one slot; a friend has a
// slot; a terminated endpoint's slot is revoked (one store transaction does
// both); an owner key other than the current owner is terminated; a slot was
// issued to an owner key, for an entry 0 to 7; the owner's own slot (entry
// 0) is bound to that owner and any other bound slot to a friend; the audit
// log's entries lie within its sequence counter.
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
	owner, hasOwner := t.Owner()
	next := t.nextOrder()
	byKey := make(map[[20]byte]*Endpoint, len(eps))
	orders := make(map[int]bool, len(eps))
	for _, e := range eps {
		byKey[e.KeyID] = e
		if id := keys.KeyIDOf(e.PublicKey); id != e.KeyID {
			add("endpoint %s: its public key's identifier is %s", e.KeyID, id)
		}
		if orders[e.StoreOrder] {
			add("endpoint %s: store order %d used twice", e.KeyID, e.StoreOrder)
		}
		orders[e.StoreOrder] = true
		if e.StoreOrder >= next {
			add("endpoint %s: store order %d, but the next key would get %d", e.KeyID, e.StoreOrder, next)
		}
		if e.Role == RoleOwner && (!hasOwner || e.KeyID != owner) && e.State != StateTerminated {
			add("endpoint %s: an owner key that is not the vehicle's owner is %s, not terminated", e.KeyID, e.State)
		}
		if e.Role == RoleFriend && e.SlotID == nil {
			add("endpoint %s: a friend key without a slot", e.KeyID)
		}
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
		if issuer, ok := byKey[s.IssuedTo]; !ok {
			add("slot %x: issued to unknown endpoint %s", s.ID, s.IssuedTo)
		} else if issuer.Role != RoleOwner {
			add("slot %x: issued to %s, a %s key", s.ID, s.IssuedTo, issuer.Role)
		}
		if s.Entry < 0 || s.Entry >= wire.Entries {
			add("slot %x: entry %d, not 0 to %d", s.ID, s.Entry, wire.Entries-1)
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
			case s.Entry == 0 && e.KeyID != s.IssuedTo:
				add("slot %x: the owner's own slot (entry 0) is bound to %s, not to its owner %s", s.ID, e.KeyID, s.IssuedTo)
			case s.Entry != 0 && e.Role != RoleFriend:
				add("slot %x: entry %d is bound to %s, which is not a friend key", s.ID, s.Entry, e.KeyID)
			}
		default:
			add("slot %x: unknown state %q", s.ID, s.State)
		}
	}
	named := make(map[string]keys.KeyID, len(eps))
	for _, e := range eps {
		if e.SlotID == nil {
			continue
		}
		if other, dup := named[string(e.SlotID)]; dup {
			add("endpoints %s and %s both name slot %x", other, e.KeyID, e.SlotID)
			continue
		}
		named[string(e.SlotID)] = e.KeyID
		s, ok := bySlot[string(e.SlotID)]
		switch {
		case !ok:
			add("endpoint %s: names unknown slot %x", e.KeyID, e.SlotID)
		case s.BoundEndpoint == nil || *s.BoundEndpoint != e.KeyID:
			add("endpoint %s: slot %x is not bound to it", e.KeyID, e.SlotID)
		case e.State == StateTerminated && s.State != SlotRevoked:
			add("endpoint %s: terminated, but its slot %x is %s", e.KeyID, e.SlotID, s.State)
		}
	}
	if hasOwner {
		if e, found := byKey[owner]; !found {
			add("owner %s: no such endpoint", owner)
		} else if e.Role != RoleOwner {
			add("owner %s: role %s", owner, e.Role)
		}
	}
	var seq uint64
	if v := t.meta().Get(keyAuditSeq); len(v) == 8 {
		seq = binary.BigEndian.Uint64(v)
	}
	switch k, _ := t.tx.Bucket(bucketAudit).Cursor().Last(); {
	case k == nil:
	case len(k) != 8:
		add("audit log: key %x is not a sequence number", k)
	case binary.BigEndian.Uint64(k) > seq:
		add("audit log: entry %d is beyond the sequence counter %d", binary.BigEndian.Uint64(k), seq)
	}
	return errs
}

// CheckReport is the result of Store.Check.
type CheckReport struct {
	Endpoints int // the endpoints checked
	Slots     int // the slots checked
	// Problems are Tx.Check's findings; none when the store is consistent.
	// A record that does not decode is one of them.
	Problems []error
}

// Check runs Tx.Check in one read transaction and counts the records it
// checked.
func (s *Store) Check() (CheckReport, error) {
	var r CheckReport
	err := s.View(func(tx *Tx) error {
		r.Problems = tx.Check()
		eps, _ := tx.Endpoints() // an undecodable record is in Problems already
		slots, _ := tx.Slots()
		r.Endpoints, r.Slots = len(eps), len(slots)
		return nil
	})
	return r, err
}
