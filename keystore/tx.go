package keystore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

// Tx is one store transaction. Reads see the transaction's own writes.
type Tx struct {
	tx       *bolt.Tx
	s        *Store
	writable bool
	touched  map[[20]byte]*Endpoint
}

var errReadOnly = errors.New("keystore: write in a read-only transaction")

func (t *Tx) meta() *bolt.Bucket { return t.tx.Bucket(bucketMeta) }

// Owner returns the current owner's key identifier, if there is one.
func (t *Tx) Owner() (keys.KeyID, bool) {
	v := t.meta().Get(keyOwner)
	if len(v) != len(keys.KeyID{}) {
		return keys.KeyID{}, false
	}
	return keys.KeyID(v), true
}

// SetOwner records the current owner.
func (t *Tx) SetOwner(id keys.KeyID) error {
	if !t.writable {
		return errReadOnly
	}
	return t.meta().Put(keyOwner, id[:])
}

// Identity returns the recorded vehicle identity (nil before the first start).
func (t *Tx) Identity() (*Identity, error) {
	v := t.meta().Get(keyIdentity)
	if v == nil {
		return nil, nil
	}
	var id Identity
	if err := json.Unmarshal(v, &id); err != nil {
		return nil, fmt.Errorf("%w: identity: %v", ErrCorrupt, err)
	}
	return &id, nil
}

// PutIdentity records the vehicle identity.
func (t *Tx) PutIdentity(id *Identity) error {
	if !t.writable {
		return errReadOnly
	}
	b, err := json.Marshal(id)
	if err != nil {
		return err
	}
	return t.meta().Put(keyIdentity, b)
}

// Endpoint returns the endpoint with identifier id.
func (t *Tx) Endpoint(id keys.KeyID) (*Endpoint, error) {
	v := t.tx.Bucket(bucketEndpoints).Get(id[:])
	if v == nil {
		return nil, fmt.Errorf("%w: key %s", ErrNotFound, id)
	}
	return decodeEndpoint(id[:], v)
}

// EndpointByPrefix returns the one endpoint whose identifier starts with
// prefix (the homekey profile names endpoints by 6 bytes of their keyID). No
// match, or more than one, is ErrNotFound.
func (t *Tx) EndpointByPrefix(prefix []byte) (*Endpoint, error) {
	c := t.tx.Bucket(bucketEndpoints).Cursor()
	k, v := c.Seek(prefix)
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, fmt.Errorf("%w: endpoint identifier %x", ErrNotFound, prefix)
	}
	if k2, _ := c.Next(); k2 != nil && bytes.HasPrefix(k2, prefix) {
		return nil, fmt.Errorf("%w: endpoint identifier %x is ambiguous", ErrNotFound, prefix)
	}
	return decodeEndpoint(k, v)
}

// PutEndpoint writes an endpoint. A new endpoint gets the next store order;
// an existing one keeps the store order it was read with.
func (t *Tx) PutEndpoint(e *Endpoint) error {
	if !t.writable {
		return errReadOnly
	}
	if t.tx.Bucket(bucketEndpoints).Get(e.KeyID[:]) == nil {
		e.StoreOrder = t.nextOrder()
		if err := t.meta().Put(keyNextOrder, binary.BigEndian.AppendUint64(nil, uint64(e.StoreOrder+1))); err != nil {
			return err
		}
	}
	return t.putEndpointRaw(e)
}

func (t *Tx) putEndpointRaw(e *Endpoint) error {
	v, err := encodeEndpoint(e)
	if err != nil {
		return err
	}
	if err := t.tx.Bucket(bucketEndpoints).Put(e.KeyID[:], v); err != nil {
		return err
	}
	if t.touched == nil {
		t.touched = make(map[[20]byte]*Endpoint)
	}
	cp := *e
	t.touched[e.KeyID] = &cp
	return nil
}

func (t *Tx) nextOrder() int {
	v := t.meta().Get(keyNextOrder)
	if len(v) != 8 {
		return 0
	}
	return int(binary.BigEndian.Uint64(v))
}

// Endpoints returns every endpoint in store order.
func (t *Tx) Endpoints() ([]*Endpoint, error) {
	var out []*Endpoint
	err := t.tx.Bucket(bucketEndpoints).ForEach(func(k, v []byte) error {
		e, err := decodeEndpoint(k, v)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].StoreOrder < out[j].StoreOrder })
	return out, err
}

// Slot returns the slot with identifier id.
func (t *Tx) Slot(id []byte) (*Slot, error) {
	v := t.tx.Bucket(bucketSlots).Get(id)
	if v == nil {
		return nil, fmt.Errorf("%w: slot %x", ErrNotFound, id)
	}
	return decodeSlot(id, v)
}

// PutSlot writes a slot.
func (t *Tx) PutSlot(s *Slot) error {
	if !t.writable {
		return errReadOnly
	}
	if len(s.ID) == 0 {
		return errors.New("keystore: slot without identifier")
	}
	v, err := encodeSlot(s)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketSlots).Put(s.ID, v)
}

// Slots returns every slot, ordered by owner entry then identifier.
func (t *Tx) Slots() ([]*Slot, error) {
	var out []*Slot
	err := t.tx.Bucket(bucketSlots).ForEach(func(k, v []byte) error {
		s, err := decodeSlot(k, v)
		if err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Entry < out[j].Entry })
	return out, err
}

// Verifier returns the pairing verifier (nil when none is stored).
func (t *Tx) Verifier() (*Verifier, error) {
	v := t.meta().Get(keyVerifier)
	if v == nil {
		return nil, nil
	}
	var r verifierRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("%w: verifier: %v", ErrCorrupt, err)
	}
	return &Verifier{W0: r.W0, L: r.L, Salt: r.Salt, N: r.N, R: r.R, P: r.P, AttemptsLeft: r.AttemptsLeft}, nil
}

// PutVerifier stores the pairing verifier.
func (t *Tx) PutVerifier(v *Verifier) error {
	if !t.writable {
		return errReadOnly
	}
	b, err := json.Marshal(verifierRecord{W0: v.W0, L: v.L, Salt: v.Salt, N: v.N, R: v.R, P: v.P, AttemptsLeft: v.AttemptsLeft})
	if err != nil {
		return err
	}
	return t.meta().Put(keyVerifier, b)
}

// DeleteVerifier removes the pairing verifier.
func (t *Tx) DeleteVerifier() error {
	if !t.writable {
		return errReadOnly
	}
	return t.meta().Delete(keyVerifier)
}
