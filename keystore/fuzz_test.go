package keystore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

// FuzzDecodeRecords feeds arbitrary bytes to the record decoders, as a
// damaged store file would: they return an error or a record, never panic.
func FuzzDecodeRecords(f *testing.F) {
	ep, _ := encodeEndpoint(&Endpoint{PublicKey: []byte{4, 1}, Role: RoleOwner, State: StateActive, Kpersistent: []byte{1, 2}, FriendlyName: "x"})
	sl, _ := encodeSlot(&Slot{IssuedTo: [20]byte{1}, Token: []byte{9}, State: SlotIssued})
	f.Add(ep)
	f.Add(sl)
	f.Add([]byte{recordFormat})
	id := make([]byte, 20)
	f.Fuzz(func(t *testing.T, b []byte) {
		if e, err := decodeEndpoint(id, b); err == nil && e.KeyID != [20]byte(id) {
			t.Fatal("wrong key id")
		}
		if s, err := decodeSlot([]byte{1}, b); err == nil && string(s.ID) != "\x01" {
			t.Fatal("wrong slot id")
		}
	})
}

// FuzzRecordRoundTrip checks the record codec both ways: an endpoint or
// slot that decodes encodes to a record that decodes to the same thing, no
// longer than the input; and a record that does not decode gets an error
// that names only the record's key, never a byte of its (secret-bearing)
// content.
func FuzzRecordRoundTrip(f *testing.F) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	bound := keys.KeyID{7}
	for _, e := range []*Endpoint{
		{PublicKey: append([]byte{4}, make([]byte, 64)...), SlotID: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Role: RoleFriend, Profile: 2,
			State: StateActive, Kpersistent: make([]byte, 32), NotBefore: now, NotAfter: now.Add(time.Hour), FriendlyName: "Alice",
			StoreOrder: 3, Created: now, LastUsed: now.Add(time.Minute)},
		{PublicKey: []byte{4, 1}, Role: RoleOwner, State: StateActive, LTSS: []byte{9}, Profile: -1, Created: time.Unix(0, -1)},
	} {
		b, _ := encodeEndpoint(e)
		f.Add(b)
	}
	for _, sl := range []*Slot{
		{Entry: 1, IssuedTo: [20]byte{1}, BoundEndpoint: &bound, Token: make([]byte, 16), State: SlotBound},
		{IssuedTo: [20]byte{1}, State: SlotIssued},
	} {
		b, _ := encodeSlot(sl)
		f.Add(b)
	}
	f.Add([]byte{recordFormat, 0x80, 0x00})
	f.Add([]byte{recordFormat, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01})
	id := []byte{0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF, 0xB0, 0xB1, 0xB2, 0xB3, 0xB4}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEndpoint(id, b)
		if err != nil {
			if want := fmt.Sprintf("%v: endpoint %x: %v", ErrCorrupt, id, errRecord); err.Error() != want || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("endpoint error %q, want %q", err, want)
			}
		} else {
			re, err := encodeEndpoint(e)
			if err != nil || len(re) > len(b) {
				t.Fatalf("endpoint %x re-encodes to %x, %v", b, re, err)
			}
			e2, err := decodeEndpoint(id, re)
			if err != nil || !reflect.DeepEqual(e, e2) {
				t.Fatalf("endpoint %x -> %+v -> %x -> %+v, %v", b, e, re, e2, err)
			}
		}
		s, err := decodeSlot(id, b)
		if err != nil {
			if want := fmt.Sprintf("%v: slot %x: %v", ErrCorrupt, id, errRecord); err.Error() != want || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("slot error %q, want %q", err, want)
			}
			return
		}
		re, err := encodeSlot(s)
		if err != nil || len(re) > len(b) {
			t.Fatalf("slot %x re-encodes to %x, %v", b, re, err)
		}
		s2, err := decodeSlot(id, re)
		if err != nil || !reflect.DeepEqual(s, s2) {
			t.Fatalf("slot %x -> %+v -> %x -> %+v, %v", b, s, re, s2, err)
		}
	})
}

// FuzzStoreRecords plants arbitrary values under every record a store
// keeps (identity, owner, next order, verifier, settings, audit counter,
// an endpoint, a slot and an audit entry), as a damaged or hand-edited file
// would hold them, and reads them through the store: every reader returns
// a value or an error wrapping ErrCorrupt, Check and the writers keep
// working, and a snapshot that reads restores into another store and reads
// back the same.
func FuzzStoreRecords(f *testing.F) {
	dir := f.TempDir()
	st, err := Open(filepath.Join(dir, "a.db"), Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	other, err := Open(filepath.Join(dir, "b.db"), Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { other.Close() })

	pk := append([]byte{4}, make([]byte, 64)...)
	ep, _ := encodeEndpoint(&Endpoint{PublicKey: pk, SlotID: []byte{1, 2}, Role: RoleOwner, State: StateActive})
	sl, _ := encodeSlot(&Slot{IssuedTo: [20]byte{1}, BoundEndpoint: &keys.KeyID{1}, Token: []byte{9}, State: SlotBound})
	f.Add([]byte(`{"profile":"ccc","vehicle_identifier":"VkVISUNMRTE=","vehicle_pk":"BA=="}`), make([]byte, 20),
		[]byte{0, 0, 0, 0, 0, 0, 0, 1}, []byte(`{"w0":"AQ==","L":"BA==","salt":"AAAAAAAAAAAAAAAAAAAAAA==","N":4096,"r":8,"p":1,"attempts_left":7}`),
		[]byte(`{"digital_key_disabled":true,"disabled_reason":"valet","disabled_readers":["door"]}`), []byte{0, 0, 0, 0, 0, 0, 0, 3},
		ep, sl, []byte(`{"type":"tap"}`))
	f.Add([]byte(`{"vehicle_pk":"%%"}`), []byte{1}, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
		[]byte(`{"N":1e99}`), []byte(`[]`), []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, []byte{1}, []byte{}, []byte{})
	f.Add([]byte{}, []byte{}, []byte{}, []byte{}, []byte{}, []byte{}, []byte{}, []byte{}, []byte{})
	keyID := [20]byte{1}
	slotID := []byte{1, 2}
	f.Fuzz(func(t *testing.T, identity, owner, nextOrder, verifier, settings, auditSeq, endpoint, slot, audit []byte) {
		err := st.db.Update(func(btx *bolt.Tx) error {
			for _, b := range [][]byte{bucketEndpoints, bucketSlots, bucketAudit} {
				if err := btx.DeleteBucket(b); err != nil {
					return err
				}
				if _, err := btx.CreateBucket(b); err != nil {
					return err
				}
			}
			meta := btx.Bucket(bucketMeta)
			for k, v := range map[string][]byte{
				string(keyIdentity): identity, string(keyOwner): owner, string(keyNextOrder): nextOrder,
				string(keyVerifier): verifier, string(keySettings): settings, string(keyAuditSeq): auditSeq,
			} {
				if len(v) == 0 {
					if err := meta.Delete([]byte(k)); err != nil {
						return err
					}
				} else if err := meta.Put([]byte(k), v); err != nil {
					return err
				}
			}
			if len(endpoint) > 0 {
				if err := btx.Bucket(bucketEndpoints).Put(keyID[:], endpoint); err != nil {
					return err
				}
			}
			if len(slot) > 0 {
				if err := btx.Bucket(bucketSlots).Put(slotID, slot); err != nil {
					return err
				}
			}
			if len(audit) > 0 {
				return btx.Bucket(bucketAudit).Put(binary.BigEndian.AppendUint64(nil, 5), audit)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		corrupt := func(what string, err error) {
			t.Helper()
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: %v does not wrap ErrCorrupt", what, err)
			}
		}
		var snap *Snapshot
		err = st.View(func(tx *Tx) error {
			_, err := tx.Identity()
			corrupt("identity", err)
			_, err = tx.Verifier()
			corrupt("verifier", err)
			_, err = tx.Settings()
			corrupt("settings", err)
			if o, ok := tx.Owner(); ok != (len(owner) == 20) || (ok && o != [20]byte(owner)) {
				t.Fatalf("owner %x read as %x, %v", owner, o, ok)
			}
			_, err = tx.Endpoints()
			corrupt("endpoints", err)
			_, err = tx.Slots()
			corrupt("slots", err)
			for _, e := range tx.Check() {
				if e == nil {
					t.Fatal("Check reported a nil error")
				}
			}
			recs, err := tx.Audit(10)
			if err != nil || len(recs) != min(len(audit), 1) {
				t.Fatalf("audit: %d entries, %v", len(recs), err)
			}
			snap, err = tx.Snapshot()
			corrupt("snapshot", err)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Stats(); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("stats: %v", err)
		}
		// The writers work on whatever the counters hold.
		err = st.Update(func(tx *Tx) error {
			if _, err := tx.AppendAudit([]byte(`{}`)); err != nil {
				return err
			}
			return tx.PutEndpoint(&Endpoint{KeyID: [20]byte{2}, PublicKey: pk, Role: RoleFriend, State: StateActive})
		})
		if err != nil {
			t.Fatalf("writing: %v", err)
		}
		if snap == nil {
			return
		}
		// What reads restores and reads back the same.
		var back *Snapshot
		err = other.Update(func(tx *Tx) error {
			if err := tx.Restore(snap); err != nil {
				return err
			}
			var err error
			back, err = tx.Snapshot()
			return err
		})
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if !reflect.DeepEqual(snap, back) {
			t.Fatalf("snapshot %+v restores as %+v", snap, back)
		}
	})
}

// FuzzOpenDamaged damages a small store file (each patch: a 2-byte
// big-endian offset, a length byte and that many bytes, written over the
// file) and opens it. Open either refuses it with one of the package's
// errors or returns a store whose every reader works or reports
// ErrCorrupt; nothing panics.
func FuzzOpenDamaged(f *testing.F) {
	dir := f.TempDir()
	src := filepath.Join(dir, "store.db")
	st, err := Open(src, Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	pk := append([]byte{4}, make([]byte, 64)...)
	err = st.Update(func(tx *Tx) error {
		id := keys.KeyIDOf(pk)
		if err := tx.PutEndpoint(&Endpoint{KeyID: id, PublicKey: pk, SlotID: []byte{1, 2}, Role: RoleOwner, State: StateActive, Kpersistent: make([]byte, 32)}); err != nil {
			return err
		}
		if err := tx.SetOwner(id); err != nil {
			return err
		}
		if err := tx.PutSlot(&Slot{ID: []byte{1, 2}, IssuedTo: id, BoundEndpoint: &id, Token: make([]byte, 16), State: SlotBound}); err != nil {
			return err
		}
		if _, err := tx.AppendAudit([]byte(`{"type":"tap"}`)); err != nil {
			return err
		}
		return tx.PutSettings(Settings{DisabledReaders: []string{"door"}})
	})
	if err != nil {
		f.Fatal(err)
	}
	st.Close()
	orig, err := os.ReadFile(src)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	f.Add([]byte{0x20, 0x10, 4, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{0x30, 0x00, 2, 0x00, 0x00})
	f.Add([]byte{0x00, 0x10, 8, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{0x20, 0x00, 1, 0x10, 0x30, 0x00, 1, 0x02})
	f.Fuzz(func(t *testing.T, patches []byte) {
		b := append([]byte(nil), orig...)
		for p := patches; len(p) >= 3; {
			off, n := int(binary.BigEndian.Uint16(p))%len(b), int(p[2])
			p = p[3:]
			n = min(n, len(p))
			copy(b[off:], p[:n])
			p = p[n:]
		}
		path := filepath.Join(t.TempDir(), "store.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{NoSync: true, LockTimeout: time.Second})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotAStore) && !errors.Is(err, ErrNewerSchema) {
				t.Fatalf("Open: %v", err)
			}
			return
		}
		defer s.Close()
		corrupt := func(what string, err error) {
			t.Helper()
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: %v", what, err)
			}
		}
		_, err = s.Stats()
		corrupt("stats", err)
		err = s.View(func(tx *Tx) error {
			_, err := tx.Snapshot()
			corrupt("snapshot", err)
			_, err = tx.Settings()
			corrupt("settings", err)
			_, err = tx.Audit(100)
			corrupt("audit", err)
			tx.Check()
			return nil
		})
		corrupt("view", err)
	})
}
