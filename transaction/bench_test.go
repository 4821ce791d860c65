package transaction_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/transaction"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

// recorder keeps the answers of a real phone so a benchmark can replay them
// without paying for the phone's CPU.
type recorder struct {
	card    transactionCard
	answers [][]byte
}

func (r *recorder) Transceive(ctx context.Context, c []byte) ([]byte, error) {
	a, err := r.card.Transceive(ctx, c)
	r.answers = append(r.answers, a)
	return a, err
}

// replayer answers with recorded answers, in order, whatever the commands,
// as an attacker who recorded a tap would; past the last one it answers
// 6F 00.
type replayer struct {
	answers [][]byte
	i       int
}

func (r *replayer) Transceive(context.Context, []byte) ([]byte, error) {
	r.i++
	if r.i > len(r.answers) {
		return []byte{0x6F, 0x00}, nil
	}
	return r.answers[r.i-1], nil
}

// benchCase is a vehicle whose next transaction is deterministic: the same
// randomness, clock and store state every time, so recorded answers stay
// valid.
type benchCase struct {
	w       *world
	rand    []byte
	rd      *bytes.Reader
	engine  *transaction.Engine
	req     transaction.Request
	answers [][]byte
	base    *keystore.Snapshot // the store before the tap
	reset   bool               // restore base before each run: the tap changes the store for good
}

func (c *benchCase) makeEngine(b testing.TB, dir string, noSync bool) {
	st, err := keystore.Open(filepath.Join(dir, "bench.db"), keystore.Options{NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.Update(func(tx *keystore.Tx) error { return tx.Restore(c.base) }); err != nil {
		b.Fatal(err)
	}
	c.rd = bytes.NewReader(c.rand)
	now := c.w.now
	c.engine, err = transaction.New(transaction.Config{Vehicle: c.w.vehicle, Store: st, Rand: c.rd, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	c.w.store = st
}

// record runs the tap once with a real phone and keeps its answers.
func (c *benchCase) record(b testing.TB, phone *endpoint.Phone) {
	c.rand = make([]byte, 4096)
	io.ReadFull(c.w.rand, c.rand)
	if err := c.w.store.View(func(tx *keystore.Tx) (err error) { c.base, err = tx.Snapshot(); return err }); err != nil {
		b.Fatal(err)
	}
	c.makeEngine(b, b.TempDir(), true)
	rec := &recorder{card: phone}
	o := c.engine.Run(context.Background(), rec, c.req)
	if !o.Allowed() {
		b.Fatalf("recorded tap not allowed: %s", o.Detail)
	}
	c.answers = rec.answers
}

// run measures Engine.Run alone: resetting the store or preparing the
// ephemeral key happens outside the measured time, without stopping the
// benchmark timer (which would stop the world on every iteration).
func (c *benchCase) run(b *testing.B, noSync, prepared bool) {
	c.makeEngine(b, b.TempDir(), noSync)
	var spent time.Duration
	for b.Loop() {
		if c.reset {
			_ = c.w.store.Update(func(tx *keystore.Tx) error { return tx.Restore(c.base) })
		}
		c.rd.Reset(c.rand)
		if prepared {
			if err := c.engine.Prepare(); err != nil {
				b.Fatal(err)
			}
		}
		start := time.Now()
		o := c.engine.Run(context.Background(), &replayer{answers: c.answers}, c.req)
		spent += time.Since(start)
		if !o.Allowed() {
			b.Fatalf("replayed tap not allowed: %s", o.Detail)
		}
	}
	b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N), "tap-ns/op")
}

func variants(b *testing.B, c *benchCase) {
	for _, v := range []struct {
		name             string
		noSync, prepared bool
	}{{"nosync", true, false}, {"nosync_prepared", true, true}, {"fsync", false, false}} {
		b.Run(v.name, func(b *testing.B) { c.run(b, v.noSync, v.prepared) })
	}
}

// addKeys stores n-1 more active keys with a Kpersistent, all used more
// recently than the owner's, so the owner's key is tried last.
func addKeys(b *testing.B, w *world, n int) {
	err := w.store.Update(func(tx *keystore.Tx) error {
		for i := 1; i < n; i++ {
			k, err := keys.NewSigningKey(w.rand)
			if err != nil {
				return err
			}
			pk := keys.EncodePoint(&k.PublicKey)
			kp := make([]byte, 32)
			w.rand.Read(kp)
			if err := tx.PutEndpoint(&keystore.Endpoint{KeyID: keys.KeyIDOf(pk), PublicKey: pk, Role: keystore.RoleFriend, Profile: 2,
				State: keystore.StateActive, Kpersistent: kp, Created: w.now, LastUsed: w.now.Add(time.Duration(i) * time.Second)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFast is the vehicle's CPU for a fast transaction at the door with
// 1, 100 and 1000 stored keys, the matching key tried last.
func BenchmarkFast(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			w := newWorld(b, b.TempDir(), 11)
			owner := w.phone(12)
			w.enrolOwner(owner)
			if o := w.tap(owner, policy.RoleDoor, true); !o.Allowed() {
				b.Fatal(o.Detail)
			}
			addKeys(b, w, n)
			w.now = w.now.Add(time.Hour)
			c := &benchCase{w: w, req: transaction.Request{Role: policy.RoleDoor, Locked: true}}
			c.record(b, owner)
			if len(c.answers) != 3 {
				b.Fatalf("%d answers: not a fast transaction", len(c.answers))
			}
			variants(b, c)
		})
	}
}

// BenchmarkStandard is the vehicle's CPU for a standard transaction at the
// door (the phone has no Kpersistent for this vehicle yet).
func BenchmarkStandard(b *testing.B) {
	w := newWorld(b, b.TempDir(), 13)
	owner := w.phone(14)
	w.enrolOwner(owner)
	// The tap stores a Kpersistent, after which the door would ask for the
	// fast path: every run starts again from the store without it.
	c := &benchCase{w: w, req: transaction.Request{Role: policy.RoleDoor, Locked: true}, reset: true}
	c.record(b, owner)
	if len(c.answers) != 4 {
		b.Fatalf("%d answers: not a standard transaction", len(c.answers))
	}
	variants(b, c)
}

// BenchmarkFriendFirstUse is the vehicle's CPU for a friend's first tap: AUTH1,
// the attestation read and checks, storing the friend, clearing the mailbox.
func BenchmarkFriendFirstUse(b *testing.B) {
	w := newWorld(b, b.TempDir(), 15)
	owner, friend := w.phone(16), w.phone(17)
	w.enrolOwner(owner)
	w.tap(owner, policy.RoleDoor, true)
	w.tap(owner, policy.RoleDashboard, true)
	w.share(owner, friend, 2, "Alice")
	c := &benchCase{w: w, req: transaction.Request{Role: policy.RoleDoor, Locked: true}, reset: true}
	c.record(b, friend)
	variants(b, c)
}
