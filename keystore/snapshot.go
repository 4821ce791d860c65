package keystore

import (
	"encoding/binary"

	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

// Snapshot is the whole semantic content of a store (not the audit log).
type Snapshot struct {
	Identity  *Identity
	Owner     *keys.KeyID
	Endpoints []*Endpoint
	Slots     []*Slot
	Verifier  *Verifier
}

// Snapshot reads the whole store.
func (t *Tx) Snapshot() (*Snapshot, error) {
	var s Snapshot
	var err error
	if s.Identity, err = t.Identity(); err != nil {
		return nil, err
	}
	if o, ok := t.Owner(); ok {
		s.Owner = &o
	}
	if s.Endpoints, err = t.Endpoints(); err != nil {
		return nil, err
	}
	if s.Slots, err = t.Slots(); err != nil {
		return nil, err
	}
	if s.Verifier, err = t.Verifier(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Restore replaces the semantic content of the store with s, keeping each
// endpoint's store order as given. It is for imports and tests; it leaves the
// audit log alone.
func (t *Tx) Restore(s *Snapshot) error {
	if !t.writable {
		return errReadOnly
	}
	for _, b := range [][]byte{bucketEndpoints, bucketSlots} {
		if err := t.tx.DeleteBucket(b); err != nil {
			return err
		}
		if _, err := t.tx.CreateBucket(b); err != nil {
			return err
		}
	}
	// The candidate cache must forget keys that are gone.
	for _, c := range t.s.FastCandidates() {
		if t.touched == nil {
			t.touched = make(map[[20]byte]*Endpoint)
		}
		t.touched[c.KeyID] = &Endpoint{KeyID: c.KeyID, State: StateTerminated}
	}
	meta := t.meta()
	for _, k := range [][]byte{keyOwner, keyVerifier, keyIdentity} {
		if err := meta.Delete(k); err != nil {
			return err
		}
	}
	next := 0
	for _, e := range s.Endpoints {
		if err := t.putEndpointRaw(e); err != nil {
			return err
		}
		next = max(next, e.StoreOrder+1)
	}
	if err := meta.Put(keyNextOrder, binary.BigEndian.AppendUint64(nil, uint64(next))); err != nil {
		return err
	}
	for _, sl := range s.Slots {
		if err := t.PutSlot(sl); err != nil {
			return err
		}
	}
	if s.Owner != nil {
		if err := t.SetOwner(*s.Owner); err != nil {
			return err
		}
	}
	if s.Verifier != nil {
		if err := t.PutVerifier(s.Verifier); err != nil {
			return err
		}
	}
	if s.Identity != nil {
		return t.PutIdentity(s.Identity)
	}
	return nil
}
