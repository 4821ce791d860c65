package enrol_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/enrol"
	"github.com/dkvehicled/dkvehicled/internal/vectortest"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

type startStates struct {
	Vehicle     vectortest.Vehicle `json:"vehicle"`
	StartStates map[string]struct {
		VehicleStore vectortest.Store `json:"vehicle_store"`
		EndpointKeys struct {
			Owner *vectortest.EndpointKeys `json:"owner"`
		} `json:"endpoint_keys"`
	} `json:"start_states"`
}

func open(t *testing.T) *keystore.Store {
	s, err := keystore.Open(filepath.Join(t.TempDir(), "s.db"), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func snapshot(t *testing.T, s *keystore.Store) vectortest.Store {
	var snap *keystore.Snapshot
	if err := s.View(func(tx *keystore.Tx) (err error) {
		if errs := tx.Check(); len(errs) > 0 {
			t.Errorf("inconsistent: %v", errs)
		}
		snap, err = tx.Snapshot()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return vectortest.FromSnapshot(snap)
}

// Enrolling the vectors' owner with its slot, token and LTSS on an empty store
// gives the after_pairing start state, on both sides.
func TestOwnerGivesAfterPairingState(t *testing.T) {
	var f startStates
	vectortest.Load(t, "ccc_negative.json", &f)
	want := f.StartStates["after_pairing"]
	ownerID := *want.VehicleStore.Owner
	ep := want.VehicleStore.Endpoints[ownerID]
	slot := want.VehicleStore.Slots[ep.SlotIdentifier.String()]
	s := open(t)
	err := s.Update(func(tx *keystore.Tx) error {
		_, err := enrol.Owner(tx, bytes.NewReader(nil), vectortest.Time(t, ep.Created), wire.DefaultLayout, enrol.OwnerRecord{
			PublicKey: ep.PublicKey, Profile: ep.Profile, FriendlyName: ep.FriendlyName, LTSS: []byte(ep.LTSS),
			SlotID: ep.SlotIdentifier, Token: []byte(slot.ImmobilizerToken),
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := vectortest.StoreDiff(snapshot(t, s), want.VehicleStore); len(d) > 0 {
		t.Fatalf("store differs:\n%s", strings.Join(d, "\n"))
	}
	k := want.EndpointKeys.Owner
	sk, _ := keys.SigningKey(k.EndpointSK)
	p := endpoint.New(wire.CCC, []wire.Version{0x0100}, wire.DefaultLayout, nil)
	got := p.InstallOwnerKey(k.VehicleIdentifier, k.VehiclePK, k.AuthorizedPK, ep.SlotIdentifier, sk)
	if !bytes.Equal(got.Private, k.PrivateMailbox) || !bytes.Equal(got.Confidential, k.ConfidentialMailbox) || !bytes.Equal(got.PK(), k.EndpointPK) {
		t.Fatal("phone key differs from the vectors' after-pairing phone")
	}
}

// A new owner replaces the old one: old owner terminated, its own and its
// unbound slots revoked, the bound friend untouched.
func TestOwnerChange(t *testing.T) {
	var f startStates
	vectortest.Load(t, "ccc_negative.json", &f)
	start := f.StartStates["after_friend_first_use"].VehicleStore
	s := open(t)
	if err := s.Update(func(tx *keystore.Tx) error { return tx.Restore(start.Snapshot(t)) }); err != nil {
		t.Fatal(err)
	}
	newOwner, _ := keys.SigningKey(bytes.Repeat([]byte{0x44}, 32))
	pk := keys.EncodePoint(&newOwner.PublicKey)
	rnd := bytes.NewReader(bytes.Repeat([]byte{0x55}, 24))
	err := s.Update(func(tx *keystore.Tx) error {
		_, err := enrol.Owner(tx, rnd, vectortest.Time(t, "2026-02-01T00:00:00Z"), wire.DefaultLayout, enrol.OwnerRecord{PublicKey: pk, FriendlyName: "new owner"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, s)
	oldOwner := *start.Owner
	if *got.Owner != keys.KeyIDOf(pk).String() || got.Endpoints[oldOwner].State != "terminated" {
		t.Fatalf("owner %s, old owner %s", *got.Owner, got.Endpoints[oldOwner].State)
	}
	for id, sl := range got.Slots {
		was := start.Slots[id]
		switch {
		case sl.IssuedTo != oldOwner:
			if sl.State != "bound" || sl.Entry != 0 {
				t.Errorf("new owner's slot %s: %s entry %d", id, sl.State, sl.Entry)
			}
		case was.State == "bound" && *was.BoundEndpoint != oldOwner:
			if sl.State != "bound" {
				t.Errorf("friend's slot %s became %s", id, sl.State)
			}
		case sl.State != "revoked":
			t.Errorf("old owner's slot %s is %s", id, sl.State)
		}
	}
	// The same key cannot be enrolled twice.
	err = s.Update(func(tx *keystore.Tx) error {
		_, err := enrol.Owner(tx, rnd, vectortest.Time(t, "2026-02-01T00:00:00Z"), wire.DefaultLayout, enrol.OwnerRecord{PublicKey: pk})
		return err
	})
	if err == nil {
		t.Fatal("owner enrolled twice")
	}
}
