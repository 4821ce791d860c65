package keystore_test

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dkvehicled/dkvehicled/internal/vectortest"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

func open(t *testing.T, path string) *keystore.Store {
	t.Helper()
	s, err := keystore.Open(path, keystore.Options{LockTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// vectorStores returns every semantic store in the negative file's start states.
func vectorStores(t *testing.T) map[string]vectortest.Store {
	var neg struct {
		StartStates map[string]struct {
			VehicleStore vectortest.Store `json:"vehicle_store"`
		} `json:"start_states"`
	}
	vectortest.Load(t, "ccc_negative.json", &neg)
	out := map[string]vectortest.Store{}
	for name, st := range neg.StartStates {
		out[name] = st.VehicleStore
	}
	if len(out) < 10 {
		t.Fatalf("only %d start states", len(out))
	}
	return out
}

func TestVectorStoresRoundTrip(t *testing.T) {
	for name, want := range vectorStores(t) {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "store.db")
			s := open(t, path)
			if err := s.Update(func(tx *keystore.Tx) error { return tx.Restore(want.Snapshot(t)) }); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = open(t, path) // from disk, not from memory
			var got *keystore.Snapshot
			err := s.View(func(tx *keystore.Tx) (err error) {
				if errs := tx.Check(); len(errs) > 0 {
					t.Errorf("vector store fails the check: %v", errs)
				}
				got, err = tx.Snapshot()
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if d := vectortest.StoreDiff(vectortest.FromSnapshot(got), want); len(d) > 0 {
				t.Fatalf("round trip differs:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

func TestCandidateOrder(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "s.db"))
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	mk := func(i int, lastUsed time.Time, state keystore.State, kp bool) *keystore.Endpoint {
		pk := make([]byte, 65)
		pk[0], pk[1] = 4, byte(i)
		e := &keystore.Endpoint{KeyID: keys.KeyIDOf(pk), PublicKey: pk, Role: keystore.RoleFriend, State: state, LastUsed: lastUsed, Created: now}
		if kp {
			e.Kpersistent = make([]byte, 32)
		}
		return e
	}
	eps := []*keystore.Endpoint{
		mk(0, time.Time{}, keystore.StateActive, true),             // never used: last, first stored
		mk(1, now, keystore.StateActive, true),                     // tie with 2, stored first
		mk(2, now, keystore.StateActive, true),                     // tie with 1
		mk(3, now.Add(time.Hour), keystore.StateActive, true),      // most recent
		mk(4, now.Add(2*time.Hour), keystore.StateSuspended, true), // not a candidate
		mk(5, now.Add(3*time.Hour), keystore.StateActive, false),   // no Kpersistent
		mk(6, time.Time{}, keystore.StateActive, true),             // never used, stored after 0
	}
	for _, e := range eps {
		if err := s.Update(func(tx *keystore.Tx) error { return tx.PutEndpoint(e) }); err != nil {
			t.Fatal(err)
		}
	}
	want := []keys.KeyID{eps[3].KeyID, eps[1].KeyID, eps[2].KeyID, eps[0].KeyID, eps[6].KeyID}
	order := func() []keys.KeyID {
		var got []keys.KeyID
		for _, c := range s.FastCandidates() {
			got = append(got, c.KeyID)
		}
		return got
	}
	if got := order(); !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	// Using key 0 moves it to the front; suspending 3 drops it; reopening
	// computes the same order from disk.
	eps[0].LastUsed = now.Add(5 * time.Hour)
	eps[3].State = keystore.StateSuspended
	if err := s.Update(func(tx *keystore.Tx) error {
		if err := tx.PutEndpoint(eps[0]); err != nil {
			return err
		}
		return tx.PutEndpoint(eps[3])
	}); err != nil {
		t.Fatal(err)
	}
	want = []keys.KeyID{eps[0].KeyID, eps[1].KeyID, eps[2].KeyID, eps[6].KeyID}
	if got := order(); !slices.Equal(got, want) {
		t.Fatalf("after update %v, want %v", got, want)
	}
	path := s.Path()
	s.Close()
	s = open(t, path)
	if got := order(); !slices.Equal(got, want) {
		t.Fatalf("after reopen %v, want %v", got, want)
	}
}

func TestUpdateIsAtomic(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "s.db"))
	pk := make([]byte, 65)
	e := &keystore.Endpoint{KeyID: keys.KeyIDOf(pk), PublicKey: pk, Role: keystore.RoleFriend, State: keystore.StateActive, Kpersistent: make([]byte, 32), SlotID: []byte{1}}
	boom := errors.New("boom")
	err := s.Update(func(tx *keystore.Tx) error {
		if err := tx.PutEndpoint(e); err != nil {
			return err
		}
		if err := tx.PutSlot(&keystore.Slot{ID: []byte{1}, IssuedTo: e.KeyID, BoundEndpoint: &e.KeyID, State: keystore.SlotBound, Token: []byte{9}}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	_ = s.View(func(tx *keystore.Tx) error {
		if _, err := tx.Endpoint(e.KeyID); !errors.Is(err, keystore.ErrNotFound) {
			t.Errorf("endpoint written by a failed update: %v", err)
		}
		if _, err := tx.Slot([]byte{1}); !errors.Is(err, keystore.ErrNotFound) {
			t.Errorf("slot written by a failed update: %v", err)
		}
		return nil
	})
	if len(s.FastCandidates()) != 0 {
		t.Error("candidate cache changed by a failed update")
	}
}

func TestStoreOrderAssigned(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "s.db"))
	var ids []keys.KeyID
	for i := range 3 {
		pk := make([]byte, 65)
		pk[1] = byte(i)
		e := &keystore.Endpoint{KeyID: keys.KeyIDOf(pk), PublicKey: pk, Role: keystore.RoleFriend, State: keystore.StateActive, StoreOrder: 99}
		ids = append(ids, e.KeyID)
		if err := s.Update(func(tx *keystore.Tx) error { return tx.PutEndpoint(e) }); err != nil {
			t.Fatal(err)
		}
	}
	// Rewriting keeps the order.
	_ = s.Update(func(tx *keystore.Tx) error {
		e, err := tx.Endpoint(ids[0])
		if err != nil {
			return err
		}
		e.FriendlyName = "renamed"
		return tx.PutEndpoint(e)
	})
	_ = s.View(func(tx *keystore.Tx) error {
		eps, _ := tx.Endpoints()
		for i, e := range eps {
			if e.StoreOrder != i || e.KeyID != ids[i] {
				t.Errorf("endpoint %d: order %d id %s", i, e.StoreOrder, e.KeyID)
			}
		}
		return nil
	})
}

func TestSecondOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	open(t, path)
	_, err := keystore.Open(path, keystore.Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, keystore.ErrLocked) || !strings.Contains(err.Error(), "another dkvehicled") {
		t.Fatalf("second open: %v", err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	open(t, path).Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, keystore.SchemaVersion+1))
	})
	db.Close()
	_, err = keystore.Open(path, keystore.Options{})
	if !errors.Is(err, keystore.ErrNewerSchema) {
		t.Fatalf("newer schema: %v", err)
	}
}

func TestForeignBoltFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err })
	db.Close()
	if _, err := keystore.Open(path, keystore.Options{}); !errors.Is(err, keystore.ErrNotAStore) {
		t.Fatalf("foreign file: %v", err)
	}
}

func TestCorruptFileRefused(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keystore.Open(garbage, keystore.Options{}); !errors.Is(err, keystore.ErrCorrupt) {
		t.Fatalf("garbage file: %v", err)
	}
	// A real store with its pages overwritten: the meta pages survive, the
	// data does not.
	path := filepath.Join(dir, "s.db")
	s := open(t, path)
	_ = s.Update(func(tx *keystore.Tx) error {
		pk := make([]byte, 65)
		return tx.PutEndpoint(&keystore.Endpoint{KeyID: keys.KeyIDOf(pk), PublicKey: pk, Role: keystore.RoleOwner, State: keystore.StateActive})
	})
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := os.Getpagesize()
	for i := 2 * page; i < len(b); i++ {
		b[i] ^= 0x5A
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keystore.Open(path, keystore.Options{}); !errors.Is(err, keystore.ErrCorrupt) {
		t.Fatalf("damaged pages: %v", err)
	}
}

// TestDamagedLayoutRefused: damage that bbolt itself trusts, each refused
// with a clear error instead of crashing or hanging the daemon (found by
// FuzzOpenDamaged; bbolt writes in the machine's byte order).
func TestDamagedLayoutRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	s := open(t, path)
	s.Close()
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ne := binary.NativeEndian
	ps := int(ne.Uint32(orig[16+8:]))
	// The current meta: the one of the two with the higher txid.
	meta := orig[16:]
	if ne.Uint64(orig[ps+16+48:]) > ne.Uint64(meta[48:]) {
		meta = orig[ps+16:]
	}
	freelist, root := int(ne.Uint64(meta[32:])), int(ne.Uint64(meta[16:]))
	for name, damage := range map[string]func(b []byte){
		// bbolt's Open would allocate 2^40 page ids.
		"free-list count": func(b []byte) {
			ne.PutUint16(b[freelist*ps+10:], 0xFFFF)
			ne.PutUint64(b[freelist*ps+16:], 1<<40)
		},
		// bbolt's check would count overflow pages with a wrapping uint32.
		"free-list overflow": func(b []byte) { ne.PutUint32(b[freelist*ps+12:], 0xFFFFFFFF) },
		// bbolt would read the page past its memory map.
		"root page id":   func(b []byte) { ne.PutUint64(b[root*ps:], 1<<30) },
		"element offset": func(b []byte) { ne.PutUint32(b[root*ps+16+4:], 1<<30) },
	} {
		t.Run(name, func(t *testing.T) {
			b := append([]byte(nil), orig...)
			damage(b)
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".db")
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := keystore.Open(p, keystore.Options{}); !errors.Is(err, keystore.ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestCheckFindsInconsistencies(t *testing.T) {
	stores := vectorStores(t)
	base := stores["after_friend_first_use"].Snapshot(t)
	friend := base.Endpoints[1]
	cases := map[string]func(s *keystore.Snapshot){
		"bound slot of unknown endpoint": func(s *keystore.Snapshot) { s.Endpoints = s.Endpoints[:1] },
		"issued slot with a binding": func(s *keystore.Snapshot) {
			for _, sl := range s.Slots {
				if sl.State == keystore.SlotIssued {
					sl.BoundEndpoint = &friend.KeyID
				}
			}
		},
		"revoked slot of an active key": func(s *keystore.Snapshot) {
			for _, sl := range s.Slots {
				if sl.BoundEndpoint != nil && *sl.BoundEndpoint == friend.KeyID {
					sl.State = keystore.SlotRevoked
				}
			}
		},
		"endpoint naming a missing slot": func(s *keystore.Snapshot) { friend.SlotID = []byte{1, 2, 3} },
		"duplicate store order":          func(s *keystore.Snapshot) { friend.StoreOrder = 0 },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			snap := stores["after_friend_first_use"].Snapshot(t)
			friend = snap.Endpoints[1]
			mutate(snap)
			s := open(t, filepath.Join(t.TempDir(), "s.db"))
			_ = s.Update(func(tx *keystore.Tx) error { return tx.Restore(snap) })
			_ = s.View(func(tx *keystore.Tx) error {
				if errs := tx.Check(); len(errs) == 0 {
					t.Error("inconsistency not found")
				}
				return nil
			})
		})
	}
}

func TestAuditBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := keystore.Open(path, keystore.Options{AuditLimit: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 12 {
		if err := s.Update(func(tx *keystore.Tx) error {
			_, err := tx.AppendAudit([]byte{byte(i)})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.View(func(tx *keystore.Tx) error {
		recs, err := tx.Audit(100)
		if err != nil || len(recs) != 5 {
			t.Fatalf("%d records, %v", len(recs), err)
		}
		for i, r := range recs {
			if r.Seq != uint64(8+i) || r.Data[0] != byte(7+i) {
				t.Errorf("record %d: seq %d data %v", i, r.Seq, r.Data)
			}
		}
		if recs, _ := tx.Audit(2); len(recs) != 2 || recs[1].Seq != 12 {
			t.Errorf("newest two: %v", recs)
		}
		return nil
	})
}

func TestSettingsPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := open(t, path)
	want := keystore.Settings{DigitalKeyDisabled: true, DisabledReason: "valet", DisabledReaders: []string{"door"}}
	if err := s.Update(func(tx *keystore.Tx) error { return tx.PutSettings(want) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path)
	_ = s.View(func(tx *keystore.Tx) error {
		got, err := tx.Settings()
		if err != nil || !got.DigitalKeyDisabled || got.DisabledReason != "valet" || len(got.DisabledReaders) != 1 {
			t.Fatalf("%+v %v", got, err)
		}
		return nil
	})
}

// TestCheckNamesEachInvariant breaks one invariant at a time in a consistent
// store (in the semantic content, or in the raw file where no API would
// write such a thing) and expects the check to name it.
func TestCheckNamesEachInvariant(t *testing.T) {
	stores := vectorStores(t)
	extra := func(i byte, role keystore.Role, state keystore.State, slot []byte) *keystore.Endpoint {
		pk := make([]byte, 65)
		pk[0], pk[1] = 4, i
		return &keystore.Endpoint{KeyID: keys.KeyIDOf(pk), PublicKey: pk, Role: role, State: state, SlotID: slot, StoreOrder: 10 + int(i)}
	}
	slotOf := func(s *keystore.Snapshot, e *keystore.Endpoint) *keystore.Slot {
		for _, sl := range s.Slots {
			if string(sl.ID) == string(e.SlotID) {
				return sl
			}
		}
		t.Fatalf("no slot %x", e.SlotID)
		return nil
	}
	issued := func(s *keystore.Snapshot) *keystore.Slot {
		for _, sl := range s.Slots {
			if sl.State == keystore.SlotIssued {
				return sl
			}
		}
		t.Fatal("no issued slot")
		return nil
	}
	putRaw := func(bucket, key, value []byte) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(key, value) }
	}
	for _, tc := range []struct {
		name string
		// mutate changes the snapshot (owner endpoint first, then the friend).
		mutate func(s *keystore.Snapshot, owner, friend *keystore.Endpoint)
		raw    func(*bolt.Tx) error
		want   string
	}{
		{name: "endpoint under another identifier", want: "its public key's identifier is",
			mutate: func(s *keystore.Snapshot, owner, friend *keystore.Endpoint) { friend.PublicKey = owner.PublicKey }},
		{name: "second live owner", want: "an owner key that is not the vehicle's owner is active",
			mutate: func(s *keystore.Snapshot, _, _ *keystore.Endpoint) {
				s.Endpoints = append(s.Endpoints, extra(1, keystore.RoleOwner, keystore.StateActive, nil))
			}},
		{name: "owner key without the owner record", want: "an owner key that is not the vehicle's owner is suspended",
			mutate: func(s *keystore.Snapshot, owner, _ *keystore.Endpoint) {
				s.Owner, owner.State = nil, keystore.StateSuspended
			}},
		{name: "terminated key with its slot bound", want: "terminated, but its slot",
			mutate: func(s *keystore.Snapshot, _, friend *keystore.Endpoint) { friend.State = keystore.StateTerminated }},
		{name: "friend without a slot", want: "a friend key without a slot",
			mutate: func(s *keystore.Snapshot, _, _ *keystore.Endpoint) {
				s.Endpoints = append(s.Endpoints, extra(2, keystore.RoleFriend, keystore.StateActive, nil))
			}},
		{name: "two endpoints name one slot", want: "both name slot",
			mutate: func(s *keystore.Snapshot, _, friend *keystore.Endpoint) {
				s.Endpoints = append(s.Endpoints, extra(3, keystore.RoleFriend, keystore.StateActive, friend.SlotID))
			}},
		{name: "slot issued to a friend", want: "a friend key",
			mutate: func(s *keystore.Snapshot, _, friend *keystore.Endpoint) { issued(s).IssuedTo = friend.KeyID }},
		{name: "entry out of range", want: "entry 8, not 0 to 7",
			mutate: func(s *keystore.Snapshot, _, _ *keystore.Endpoint) { issued(s).Entry = 8 }},
		{name: "owner's own slot bound to a friend", want: "the owner's own slot (entry 0) is bound to",
			mutate: func(s *keystore.Snapshot, _, friend *keystore.Endpoint) { slotOf(s, friend).Entry = 0 }},
		{name: "friend's slot bound to the owner", want: "entry 3 is bound to",
			mutate: func(s *keystore.Snapshot, owner, _ *keystore.Endpoint) { slotOf(s, owner).Entry = 3 }},
		{name: "store order not below the next", want: "but the next key would get 1",
			raw: putRaw([]byte("meta"), []byte("next_order"), binary.BigEndian.AppendUint64(nil, 1))},
		{name: "audit entry beyond its counter", want: "audit log: entry 99 is beyond the sequence counter 0",
			raw: putRaw([]byte("audit"), binary.BigEndian.AppendUint64(nil, 99), []byte("{}"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := stores["after_friend_first_use"].Snapshot(t)
			if tc.mutate != nil {
				tc.mutate(snap, snap.Endpoints[0], snap.Endpoints[1])
			}
			path := filepath.Join(t.TempDir(), "s.db")
			s := open(t, path)
			if err := s.Update(func(tx *keystore.Tx) error { return tx.Restore(snap) }); err != nil {
				t.Fatal(err)
			}
			s.Close()
			if tc.raw != nil {
				db, err := bolt.Open(path, 0o600, nil)
				if err != nil {
					t.Fatal(err)
				}
				err = db.Update(tc.raw)
				db.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			var errs []error
			_ = open(t, path).View(func(tx *keystore.Tx) error { errs = tx.Check(); return nil })
			var found bool
			for _, err := range errs {
				found = found || strings.Contains(err.Error(), tc.want)
			}
			if !found {
				t.Errorf("check found %v, want a problem saying %q", errs, tc.want)
			}
		})
	}
}

// TestCheckReadOnly: a store opened read-only (as dkvehicled -check-store
// does) passes bbolt's page check and the store check, which counts what it
// checked; a read-only open waits for a writer's lock like any other.
func TestCheckReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := open(t, path)
	snap := vectorStores(t)["after_friend_first_use"].Snapshot(t)
	if err := s.Update(func(tx *keystore.Tx) error { return tx.Restore(snap) }); err != nil {
		t.Fatal(err)
	}
	if _, err := keystore.Open(path, keystore.Options{ReadOnly: true, LockTimeout: 50 * time.Millisecond}); !errors.Is(err, keystore.ErrLocked) {
		t.Fatalf("read-only open beside a writer: %v", err)
	}
	s.Close()
	ro, err := keystore.Open(path, keystore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	r, err := ro.Check()
	if err != nil || len(r.Problems) > 0 || r.Endpoints != len(snap.Endpoints) || r.Slots != len(snap.Slots) {
		t.Fatalf("consistent store: %+v, %v; want %d endpoints, %d slots", r, err, len(snap.Endpoints), len(snap.Slots))
	}
	if _, err := keystore.Open(filepath.Join(t.TempDir(), "missing.db"), keystore.Options{ReadOnly: true}); err == nil {
		t.Fatal("a missing store opened read-only")
	}
}
