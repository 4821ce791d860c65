package transaction_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/internal/vectortest"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/transaction"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// flow is a starting state (vehicle store and the tapping phone) and a tap.
type flow struct {
	name   string
	store  *keystore.Snapshot
	phone  []byte // endpoint.Phone.Save
	role   policy.Role
	path   transaction.Path
	locked bool
}

// flows builds the starting states of the five flows by running the story.
func flows(t *testing.T) []flow {
	w := newWorld(t, t.TempDir(), 7)
	owner, friend := w.phone(8), w.phone(9)
	w.enrolOwner(owner)
	var out []flow
	capture := func(name string, p *endpoint.Phone, role policy.Role, path transaction.Path) {
		var snap *keystore.Snapshot
		if err := w.store.View(func(tx *keystore.Tx) (err error) { snap, err = tx.Snapshot(); return err }); err != nil {
			t.Fatal(err)
		}
		saved, err := p.Save()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, flow{name: name, store: snap, phone: saved, role: role, path: path, locked: true})
		if o := w.tap(p, role, true); !o.Allowed() || o.Path != path {
			t.Fatalf("%s: honest tap %s %s (%s)", name, o.Result, o.Path, o.Detail)
		}
	}
	capture("standard", owner, policy.RoleDoor, transaction.PathStandard)
	capture("fast", owner, policy.RoleDoor, transaction.PathFast)
	capture("provisioning and engine start", owner, policy.RoleDashboard, transaction.PathStandard)
	capture("engine start", owner, policy.RoleDashboard, transaction.PathStandard)
	w.share(owner, friend, 2, "Alice")
	capture("friend first use", friend, policy.RoleDoor, transaction.PathFriendFirstUse)
	capture("friend engine start", friend, policy.RoleDashboard, transaction.PathStandard)
	return out
}

// play runs a flow from its starting state with an optional corruption.
func (f *flow) play(t *testing.T, corrupt func(int, []byte) []byte) (*transaction.Outcome, vectortest.Store, []int, []byte) {
	t.Helper()
	w := newWorld(t, t.TempDir(), 7)
	if err := w.store.Update(func(tx *keystore.Tx) error { return tx.Restore(f.store) }); err != nil {
		t.Fatal(err)
	}
	w.now = w.now.Add(time.Hour)
	p, err := endpoint.Load(f.phone, seeded(99))
	if err != nil {
		t.Fatal(err)
	}
	var lens []int
	var auth0 []byte
	card := &endpoint.Faulty{Card: p, DropAt: -1, Corrupt: func(i int, r []byte) []byte {
		lens = append(lens, len(r))
		if i == 1 {
			auth0 = append([]byte(nil), r...)
		}
		if corrupt != nil {
			return corrupt(i, r)
		}
		return r
	}}
	o := w.engine.Run(context.Background(), card, transaction.Request{Role: f.role, Locked: f.locked})
	return o, snapshot(t, w.store), lens, auth0
}

// cryptogramRange is where the 9D value sits in an AUTH0 answer.
func cryptogramRange(r []byte) (int, int) {
	elems, err := apdu.ParseTLV(r[:len(r)-2])
	if err != nil {
		return -1, -1
	}
	off := 0
	for _, e := range elems {
		n := 2 + len(e.Value)
		if e.Tag == wire.TagCryptogram {
			return off + 2, off + n
		}
		off += n
	}
	return -1, -1
}

// TestTamperEveryResponseByte flips every byte of every phone answer in the
// fast, standard, EXCHANGE (provisioning), friend-first-use and engine-start
// flows. No flip may lead to an allowed action, except those the protocol
// recovers from by design: the fast cryptogram (fallback to AUTH1) and the
// answer to CONTROL FLOW itself. The store may only move towards the honest
// run's result, and not at all before the endpoint is authenticated.
func TestTamperEveryResponseByte(t *testing.T) {
	for _, f := range flows(t) {
		t.Run(f.name, func(t *testing.T) {
			honest, honestStore, lens, auth0 := f.play(t, nil)
			if !honest.Allowed() {
				t.Fatalf("honest run: %s", honest.Detail)
			}
			before := vectortest.FromSnapshot(f.store)
			// The answer after which the endpoint is authenticated.
			authAt := 2
			switch f.path {
			case transaction.PathFast:
				authAt = 1
			case transaction.PathFriendFirstUse:
				authAt = len(lens) - 3 // the last attestation read
			}
			cStart, cEnd := cryptogramRange(auth0)
			runs := 0
			for i, n := range lens {
				for pos := range n {
					runs++
					o, st, _, _ := f.play(t, endpoint.Flip(i, pos, 0xFF))
					where := fmt.Sprintf("answer %d byte %d", i, pos)
					recoverable := i == len(lens)-1 || (i == 1 && pos >= cStart && pos < cEnd)
					if o.Allowed() && !recoverable {
						t.Fatalf("%s: flipped, still allowed (%s)", where, o.Path)
					}
					if recoverable {
						continue
					}
					changed := vectortest.StoreDiff(st, before)
					if i <= authAt && len(changed) > 0 {
						t.Fatalf("%s: store changed before authentication: %v", where, changed)
					}
					for id, e := range st.Endpoints {
						if deref(e.LastUsed) != deref(before.Endpoints[id].LastUsed) {
							t.Fatalf("%s: last use of %s written on a failed tap", where, id)
						}
					}
					if d := partialDiff(st, before, honestStore); d != "" {
						t.Fatalf("%s: store changed beyond the honest run: %s", where, d)
					}
				}
			}
			t.Logf("%d flips", runs)
		})
	}
}

// partialDiff reports a store path where got differs from both before and
// the honest result: a failed tap may leave a path as it was or as the honest
// tap made it, nothing else.
func partialDiff(got, before, honest vectortest.Store) string {
	for _, d := range vectortest.StoreDiff(got, before) {
		path := d[:strings.Index(d, ":")]
		if !bytes.Contains([]byte(strings.Join(vectortest.StoreDiff(honest, before), "\n")), []byte(path+":")) {
			return d
		}
		for _, h := range vectortest.StoreDiff(got, honest) {
			if strings.HasPrefix(h, path+":") {
				return h
			}
		}
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}
