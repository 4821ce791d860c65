package transaction_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/enrol"
	"github.com/dkvehicled/dkvehicled/immobilizer"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/transaction"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// world is a vehicle and its phones, all in process, with deterministic
// randomness so that runs can be repeated byte for byte.
type world struct {
	t       testing.TB
	vehicle transaction.Vehicle
	store   *keystore.Store
	engine  *transaction.Engine
	now     time.Time
	rand    *rand.ChaCha8
}

func seeded(n byte) *rand.ChaCha8 {
	var seed [32]byte
	seed[0] = n
	return rand.NewChaCha8(seed)
}

// newWorld makes a vehicle with an empty store at dir.
func newWorld(t testing.TB, dir string, seed byte) *world {
	t.Helper()
	w := &world{t: t, now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), rand: seeded(seed)}
	vk, err := keys.NewSigningKey(w.rand)
	if err != nil {
		t.Fatal(err)
	}
	profiles, err := policy.NewProfiles(policy.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	w.vehicle = transaction.Vehicle{Profile: wire.CCC, Identifier: []byte("VEHICLE1"), Key: vk, Layout: wire.DefaultLayout, Profiles: profiles}
	w.open(dir)
	return w
}

// open (re)opens the store at dir and makes a fresh engine on it.
func (w *world) open(dir string) {
	w.t.Helper()
	st, err := keystore.Open(filepath.Join(dir, "store.db"), keystore.Options{NoSync: true})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { st.Close() })
	w.store = st
	w.engine, err = transaction.New(transaction.Config{Vehicle: w.vehicle, Store: st, Rand: w.rand, Now: func() time.Time { return w.now }})
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) phone(seed byte) *endpoint.Phone {
	return endpoint.New(wire.CCC, []wire.Version{0x0100}, wire.DefaultLayout, seeded(seed))
}

// enrolOwner enrols a phone as owner directly, as pairing would leave it.
func (w *world) enrolOwner(p *endpoint.Phone) {
	w.t.Helper()
	slotID := make([]byte, w.vehicle.Layout.SlotIDLen)
	token := make([]byte, w.vehicle.Layout.TokenLen)
	w.rand.Read(slotID)
	w.rand.Read(token)
	k, err := p.NewOwnerKey(w.vehicle.Identifier, w.engine.VehiclePK(), nil, slotID)
	if err != nil {
		w.t.Fatal(err)
	}
	err = w.store.Update(func(tx *keystore.Tx) error {
		_, err := enrol.Owner(tx, w.rand, w.now, w.vehicle.Layout, enrol.OwnerRecord{
			PublicKey: k.PK(), Profile: 0, FriendlyName: "owner", SlotID: slotID, Token: token,
		})
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

// share has the owner share a key with the friend's phone.
func (w *world) share(owner, friend *endpoint.Phone, profile int, name string) {
	w.t.Helper()
	inv, err := friend.Invite(w.vehicle.Identifier)
	if err != nil {
		w.t.Fatal(err)
	}
	s, err := owner.Share(inv, endpoint.ShareTerms{Profile: profile, NotBefore: w.now.Add(-time.Hour), NotAfter: w.now.Add(30 * 24 * time.Hour), FriendlyName: name})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := friend.Accept(s); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) revoke(p *endpoint.Phone) {
	w.t.Helper()
	id := p.Key(w.vehicle.Identifier).KeyID()
	if err := w.store.Update(func(tx *keystore.Tx) error { return immobilizer.RevokeEndpoint(tx, id) }); err != nil {
		w.t.Fatal(err)
	}
}

// tap runs one transaction of card at a reader and checks the store after it.
func (w *world) tap(card interface {
	Transceive(context.Context, []byte) ([]byte, error)
}, role policy.Role, locked bool) *transaction.Outcome {
	w.t.Helper()
	w.now = w.now.Add(time.Minute)
	o := w.engine.Run(context.Background(), card, transaction.Request{Role: role, Locked: locked})
	if err := w.store.View(func(tx *keystore.Tx) error {
		for _, e := range tx.Check() {
			w.t.Errorf("store inconsistent after the tap: %v", e)
		}
		return nil
	}); err != nil {
		w.t.Fatal(err)
	}
	return o
}

// transactionCard is what a phone is to the engine.
type transactionCard = interface {
	Transceive(context.Context, []byte) ([]byte, error)
}
