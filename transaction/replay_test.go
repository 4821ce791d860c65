package transaction_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/internal/vectortest"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/transaction"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// TestReplayedTapRefused: an attacker who recorded the phone's answers of a
// successful tap (a fast door tap, a standard engine start) and plays them
// back to the vehicle's next transaction is refused, because that
// transaction has a fresh ephemeral key and transaction identifier. The
// store is unchanged, and the real phone's next tap still works. The same
// answers played against the recorded randomness do pass: freshness is what
// refuses them.
func TestReplayedTapRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		role    policy.Role
		path    transaction.Path
		answers int
		detail  string // what the refused replay's detail says
	}{
		// The old cryptogram matches nothing, so the vehicle asks for AUTH1 and
		// gets the recorded answer to CONTROL FLOW.
		{"fast door", policy.RoleDoor, transaction.PathFast, 3, "AUTH1 response: secure channel: bad length"},
		// The old AUTH1 answer was made with the old session keys.
		{"standard engine start", policy.RoleDashboard, transaction.PathStandard, 6, "AUTH1 response: secure channel: MAC mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, t.TempDir(), 31)
			owner := w.phone(32)
			w.enrolOwner(owner)
			w.tap(owner, policy.RoleDoor, true)      // Kpersistent: the door asks for the fast path
			w.tap(owner, policy.RoleDashboard, true) // provisioning done: the next engine start is a plain one
			req := transaction.Request{Role: tc.role, Locked: true}
			c := &benchCase{w: w, req: req}
			c.record(t, owner)
			if len(c.answers) != tc.answers {
				t.Fatalf("recorded %d answers, want %d", len(c.answers), tc.answers)
			}
			fresh := func() *transaction.Engine {
				e, err := transaction.New(transaction.Config{Vehicle: w.vehicle, Store: w.store, Rand: w.rand, Now: func() time.Time { return w.now }})
				if err != nil {
					t.Fatal(err)
				}
				return e
			}
			before := snapshot(t, w.store)

			rp := &replayer{answers: c.answers}
			o := fresh().Run(context.Background(), rp, req)
			if o.Allowed() || o.Reason != wire.ReasonProtocol || !errors.Is(o.Err, transaction.ErrProtocol) || !strings.Contains(o.Detail, tc.detail) {
				t.Fatalf("replay: %s reason %s (%s)", o.Result, o.Reason, o.Detail)
			}
			t.Logf("replay refused: %s", o.Detail)
			if o.KeyID != nil || o.Path != transaction.PathStandard {
				t.Fatalf("replay identified key %v on path %s", o.KeyID, o.Path)
			}
			if string(o.ControlFlow) != string(wire.ControlFlow(false, wire.ReasonProtocol)) {
				t.Fatalf("CONTROL FLOW %x", o.ControlFlow)
			}
			if d := vectortest.StoreDiff(snapshot(t, w.store), before); len(d) > 0 {
				t.Fatalf("the replay changed the store: %s", d)
			}

			// Against the randomness the answers were recorded with, they pass.
			c.rd.Reset(c.rand)
			if o := c.engine.Run(context.Background(), &replayer{answers: c.answers}, req); !o.Allowed() || o.Path != tc.path {
				t.Fatalf("replay against the recorded randomness: %s %s (%s)", o.Result, o.Path, o.Detail)
			}

			w.engine = fresh()
			if o := w.tap(owner, tc.role, true); !o.Allowed() || o.Path != tc.path {
				t.Fatalf("the phone after the replay: %s %s (%s)", o.Result, o.Path, o.Detail)
			}
		})
	}
}
