package sim

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/reader"
)

type echo struct{ resets int }

func (e *echo) Transceive(_ context.Context, c []byte) ([]byte, error) {
	return append(append([]byte(nil), c...), 0x90, 0x00), nil
}
func (e *echo) Reset() { e.resets++ }

func TestPlaceTapRemove(t *testing.T) {
	r := New("door")
	ctx := context.Background()
	got := make(chan reader.Card)
	go func() {
		c, err := r.WaitCard(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	p := &echo{}
	if err := r.Place(p); err != nil {
		t.Fatal(err)
	}
	if err := r.Place(&echo{}); !errors.Is(err, ErrOccupied) {
		t.Fatalf("second place: %v", err)
	}
	c := <-got
	resp, err := c.Transceive(ctx, []byte{1, 2})
	if err != nil || len(resp) != 4 {
		t.Fatalf("%x %v", resp, err)
	}
	// One card per placement: WaitCard blocks until the next one.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	if _, err := r.WaitCard(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second WaitCard for the same placement: %v", err)
	}
	cancel()
	removed := make(chan error)
	go func() { removed <- c.WaitRemoved(ctx) }()
	if r.Remove() != apdu.Transceiver(p) {
		t.Fatal("Remove returned another phone")
	}
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transceive(ctx, []byte{1}); !errors.Is(err, reader.ErrCardGone) {
		t.Fatalf("after removal: %v", err)
	}
	if p.resets != 2 {
		t.Fatalf("phone reset %d times, want at placement and removal", p.resets)
	}
}

func TestCloseEndsWait(t *testing.T) {
	r := New("dash")
	done := make(chan error)
	go func() { _, err := r.WaitCard(context.Background()); done <- err }()
	r.Close()
	if err := <-done; !errors.Is(err, reader.ErrUnavailable) {
		t.Fatal(err)
	}
}
