package transaction_test

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/internal/vectortest"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/transaction"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// lateAt answers like its card, but only after delay for the commands whose
// INS is ins: a relay in between.
type lateAt struct {
	card  transactionCard
	ins   byte
	delay time.Duration
}

func (l *lateAt) Transceive(ctx context.Context, c []byte) ([]byte, error) {
	if len(c) > 1 && c[1] == l.ins {
		select {
		case <-time.After(l.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return l.card.Transceive(ctx, c)
}

// TestResponseBounds: an answer to AUTH0 or AUTH1 later than its configured
// bound ends the tap with CONTROL FLOW 00 07 and a detail naming the time and
// the bound, before anything is stored; the same late answer passes with no
// bound or a bound above it.
func TestResponseBounds(t *testing.T) {
	const delay = 50 * time.Millisecond
	for _, tc := range []struct {
		name    string
		role    policy.Role
		ins     byte
		command string
		bounds  transaction.ResponseBounds
		path    transaction.Path // of the tap that passes
		failed  transaction.Path // of the refused tap
	}{
		{"AUTH0 at the door", policy.RoleDoor, wire.INSAuth0, "AUTH0", transaction.ResponseBounds{AUTH0: time.Millisecond}, transaction.PathFast, transaction.PathNone},
		{"AUTH1 at the dashboard", policy.RoleDashboard, wire.INSAuth1, "AUTH1", transaction.ResponseBounds{AUTH1: time.Millisecond}, transaction.PathStandard, transaction.PathStandard},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, t.TempDir(), 41)
			owner := w.phone(42)
			w.enrolOwner(owner)
			w.tap(owner, policy.RoleDoor, true)      // Kpersistent: the door asks for the fast path
			w.tap(owner, policy.RoleDashboard, true) // provisioning
			engine := func(b transaction.ResponseBounds) *transaction.Engine {
				e, err := transaction.New(transaction.Config{Vehicle: w.vehicle, Store: w.store, Rand: w.rand, Now: func() time.Time { return w.now },
					Timeouts: transaction.Timeouts{APDU: 5 * time.Second, Long: 5 * time.Second, Transaction: 10 * time.Second}, Bounds: b})
				if err != nil {
					t.Fatal(err)
				}
				return e
			}
			late := &lateAt{card: owner, ins: tc.ins, delay: delay}
			before := snapshot(t, w.store)

			w.engine = engine(tc.bounds)
			o := w.tap(late, tc.role, true)
			if o.Allowed() || o.Result != transaction.ResultError || o.Reason != wire.ReasonTimeout || !errors.Is(o.Err, transaction.ErrTimeout) || o.Path != tc.failed {
				t.Fatalf("late %s: %s %s reason %s (%s)", tc.command, o.Result, o.Path, o.Reason, o.Detail)
			}
			m := regexp.MustCompile(`^` + tc.command + ` answered in ([0-9.]+) ms, over the 1 ms bound: possible relay$`).FindStringSubmatch(o.Detail)
			if m == nil {
				t.Fatalf("detail %q", o.Detail)
			}
			if took, _ := strconv.ParseFloat(m[1], 64); took < float64(delay/time.Millisecond) {
				t.Fatalf("detail %q: the answer was at least %v late", o.Detail, delay)
			}
			if string(o.ControlFlow) != string(wire.ControlFlow(false, wire.ReasonTimeout)) {
				t.Fatalf("CONTROL FLOW %x", o.ControlFlow)
			}
			if d := vectortest.StoreDiff(snapshot(t, w.store), before); len(d) > 0 {
				t.Fatalf("the refused tap changed the store: %v", d)
			}

			// A late answer under its bound, or with no bound, passes.
			for _, b := range []transaction.ResponseBounds{{AUTH0: 4 * time.Second, AUTH1: 4 * time.Second}, {}} {
				w.engine = engine(b)
				if o := w.tap(late, tc.role, true); !o.Allowed() || o.Path != tc.path {
					t.Fatalf("late %s with bounds %+v: %s %s (%s)", tc.command, b, o.Result, o.Path, o.Detail)
				}
			}
		})
	}
}
