package immobilizer_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/dkvehicled/dkvehicled/immobilizer"
	"github.com/dkvehicled/dkvehicled/internal/vectortest"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

// start loads a start state of ccc_negative.json into a fresh store.
func start(t *testing.T, name string) (*keystore.Store, map[string]vectortest.Store) {
	var neg struct {
		StartStates map[string]struct {
			VehicleStore vectortest.Store `json:"vehicle_store"`
		} `json:"start_states"`
	}
	vectortest.Load(t, "ccc_negative.json", &neg)
	all := map[string]vectortest.Store{}
	for k, v := range neg.StartStates {
		all[k] = v.VehicleStore
	}
	s, err := keystore.Open(filepath.Join(t.TempDir(), "s.db"), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Update(func(tx *keystore.Tx) error { return tx.Restore(all[name].Snapshot(t)) }); err != nil {
		t.Fatal(err)
	}
	return s, all
}

func snapshot(t *testing.T, s *keystore.Store) vectortest.Store {
	var snap *keystore.Snapshot
	if err := s.View(func(tx *keystore.Tx) (err error) {
		if errs := tx.Check(); len(errs) > 0 {
			t.Errorf("store inconsistent: %v", errs)
		}
		snap, err = tx.Snapshot()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return vectortest.FromSnapshot(snap)
}

// Revoking Alice from after_friend_first_use gives the vectors' friend_revoked
// state; revoking her unused slot from after_share gives
// friend_slot_revoked_before_first_use.
func TestRevokeMatchesVectorStates(t *testing.T) {
	s, all := start(t, "after_friend_first_use")
	alice, _ := keys.ParseKeyID("b9fb4400185fe5183a597f0e67320a00ae3720de")
	if err := s.Update(func(tx *keystore.Tx) error { return immobilizer.RevokeEndpoint(tx, alice) }); err != nil {
		t.Fatal(err)
	}
	if d := vectortest.StoreDiff(snapshot(t, s), all["friend_revoked"]); len(d) > 0 {
		t.Fatalf("after revoke: %v", d)
	}

	s, all = start(t, "after_share")
	slot := []byte{0x0f, 0xba, 0xc5, 0x25, 0xba, 0xd6, 0x44, 0x4b}
	if err := s.Update(func(tx *keystore.Tx) error { return immobilizer.RevokeSlot(tx, slot) }); err != nil {
		t.Fatal(err)
	}
	if d := vectortest.StoreDiff(snapshot(t, s), all["friend_slot_revoked_before_first_use"]); len(d) > 0 {
		t.Fatalf("after slot revoke: %v", d)
	}
	// A bound slot is not revoked on its own.
	s, _ = start(t, "after_friend_first_use")
	err := s.Update(func(tx *keystore.Tx) error { return immobilizer.RevokeSlot(tx, slot) })
	if !errors.Is(err, immobilizer.ErrNotIssued) {
		t.Fatalf("bound slot revoked alone: %v", err)
	}
}

func TestIssueBindCheck(t *testing.T) {
	s, _ := start(t, "owner_provisioned")
	owner, _ := keys.ParseKeyID("299217ec864ca9467ebd6cc6344b7386fb0c7ae5")
	// The first drawn identifier collides with an existing slot: drawn again.
	existing := []byte{0x0f, 0xba, 0xc5, 0x25, 0xba, 0xd6, 0x44, 0x4b}
	fresh := bytes.Repeat([]byte{7}, 8)
	token := bytes.Repeat([]byte{9}, 16)
	r := bytes.NewReader(append(append(append([]byte(nil), existing...), fresh...), token...))
	var issued *keystore.Slot
	if err := s.Update(func(tx *keystore.Tx) (err error) {
		issued, err = immobilizer.Issue(tx, r, 8, 16, owner, 3)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(issued.ID, fresh) || !bytes.Equal(issued.Token.Expose(), token) || issued.State != keystore.SlotIssued || issued.Entry != 3 {
		t.Fatalf("issued %x entry %d state %s", issued.ID, issued.Entry, issued.State)
	}
	if !immobilizer.Check(issued, token) || immobilizer.Check(issued, token[:15]) || immobilizer.Check(issued, bytes.Repeat([]byte{8}, 16)) {
		t.Fatal("Check wrong")
	}
	other, _ := keys.ParseKeyID("b9fb4400185fe5183a597f0e67320a00ae3720de")
	err := s.Update(func(tx *keystore.Tx) error { return immobilizer.Bind(tx, issued, other, other) })
	if !errors.Is(err, immobilizer.ErrNotOwners) {
		t.Fatalf("bound a slot of another owner: %v", err)
	}
	if err := s.Update(func(tx *keystore.Tx) error {
		if err := immobilizer.Bind(tx, issued, owner, other); err != nil {
			return err
		}
		return immobilizer.Bind(tx, issued, owner, other)
	}); !errors.Is(err, immobilizer.ErrNotIssued) {
		t.Fatalf("bound twice: %v", err)
	}
}

func TestRevokeUnbound(t *testing.T) {
	s, _ := start(t, "after_friend_first_use")
	owner, _ := keys.ParseKeyID("299217ec864ca9467ebd6cc6344b7386fb0c7ae5")
	if err := s.Update(func(tx *keystore.Tx) error { return immobilizer.RevokeUnbound(tx, owner) }); err != nil {
		t.Fatal(err)
	}
	st := snapshot(t, s)
	revoked, bound := 0, 0
	for _, sl := range st.Slots {
		switch sl.State {
		case "revoked":
			revoked++
		case "bound":
			bound++
		case "issued":
			t.Errorf("slot still issued")
		}
	}
	if revoked != 6 || bound != 2 {
		t.Fatalf("revoked %d bound %d", revoked, bound)
	}
}
