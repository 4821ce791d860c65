package transaction_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/transaction"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// hangAt answers like the phone until command n, which it never answers: it
// waits for its context, as a reader driver does, and reports the deadline it
// was given.
type hangAt struct {
	card      apdu.Transceiver
	n, i      int
	deadlines []time.Duration
}

func (h *hangAt) Transceive(ctx context.Context, c []byte) ([]byte, error) {
	i := h.i
	h.i++
	if d, ok := ctx.Deadline(); ok {
		h.deadlines = append(h.deadlines, time.Until(d))
	}
	if i != h.n {
		return h.card.Transceive(ctx, c)
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestPhoneThatStopsAnsweringTimesOut(t *testing.T) {
	w := newWorld(t, t.TempDir(), 21)
	owner := w.phone(22)
	w.enrolOwner(owner)
	e, err := transaction.New(transaction.Config{Vehicle: w.vehicle, Store: w.store, Rand: w.rand, Now: func() time.Time { return w.now },
		Timeouts: transaction.Timeouts{APDU: 30 * time.Millisecond, Long: 60 * time.Millisecond, Transaction: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	h := &hangAt{card: owner, n: 1} // AUTH0 is never answered
	o := e.Run(context.Background(), h, transaction.Request{Role: policy.RoleDoor, Locked: true})
	if o.Allowed() || o.Reason != wire.ReasonTimeout || !errors.Is(o.Err, transaction.ErrTimeout) {
		t.Fatalf("got %s reason %s (%v)", o.Result, o.Reason, o.Err)
	}
	// CONTROL FLOW 00 07 is still attempted, under a fresh deadline.
	if string(o.ControlFlow) != string(wire.ControlFlow(false, wire.ReasonTimeout)) || h.i != 3 {
		t.Fatalf("CONTROL FLOW %x after %d commands", o.ControlFlow, h.i)
	}
	for i, d := range h.deadlines {
		if d <= 0 || d > 30*time.Millisecond {
			t.Errorf("command %d got a deadline %v away, want at most the APDU timeout", i, d)
		}
	}

	// The whole transaction's limit cuts an exchange short too.
	e, _ = transaction.New(transaction.Config{Vehicle: w.vehicle, Store: w.store, Rand: w.rand, Now: func() time.Time { return w.now },
		Timeouts: transaction.Timeouts{APDU: time.Hour, Long: time.Hour, Transaction: 40 * time.Millisecond}})
	h = &hangAt{card: owner, n: 2} // AUTH1
	o = e.Run(context.Background(), h, transaction.Request{Role: policy.RoleDoor, Locked: true})
	if o.Reason != wire.ReasonTimeout || len(h.deadlines) < 3 || h.deadlines[2] > 40*time.Millisecond {
		t.Fatalf("reason %s, deadlines %v", o.Reason, h.deadlines)
	}
}

func TestCancelledContextSendsNoTimeoutReason(t *testing.T) {
	w := newWorld(t, t.TempDir(), 23)
	owner := w.phone(24)
	w.enrolOwner(owner)
	ctx, cancel := context.WithCancel(context.Background())
	h := &hangAt{card: owner, n: 1}
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	o := w.engine.Run(ctx, h, transaction.Request{Role: policy.RoleDoor, Locked: true})
	if o.Allowed() || o.Reason == wire.ReasonTimeout || o.ControlFlow != nil || !errors.Is(o.Err, context.Canceled) {
		t.Fatalf("got %s reason %s CF %x err %v", o.Result, o.Reason, o.ControlFlow, o.Err)
	}
}
