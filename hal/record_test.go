package hal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/hal"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newRecorder(t *testing.T, cfg hal.RecordConfig) (*hal.Recorder, *clock, *bytes.Buffer) {
	t.Helper()
	c := &clock{now: t0}
	var buf bytes.Buffer
	cfg.Now = c.Now
	cfg.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	r, err := hal.NewRecorder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, c, &buf
}

func TestRecorderStartsLockedWithoutAuthorization(t *testing.T) {
	r, _, logs := newRecorder(t, hal.RecordConfig{})
	got := r.State()
	if got.Lock != hal.Locked || !got.EngineAuthorizedUntil.IsZero() || got.DoorOpen != nil {
		t.Fatalf("initial state = %+v, want locked, no authorization, no door", got)
	}
	if h := r.History(); len(h) != 0 {
		t.Fatalf("history at start = %v, want empty", h)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if h := r.History(); len(h) != 0 {
		t.Fatalf("history after Close = %v, want empty", h)
	}
	if strings.Contains(logs.String(), `"action":"unlock"`) || strings.Contains(logs.String(), `"action":"engine_start"`) {
		t.Fatalf("start/close logged an actuation: %s", logs)
	}
}

func TestRecorderInitialLock(t *testing.T) {
	r, _, _ := newRecorder(t, hal.RecordConfig{InitialLock: hal.Unlocked})
	if got := r.State().Lock; got != hal.Unlocked {
		t.Fatalf("Lock = %q, want unlocked", got)
	}
	if _, err := hal.NewRecorder(hal.RecordConfig{InitialLock: "ajar"}); err == nil {
		t.Fatal("NewRecorder accepted lock state \"ajar\"")
	}
	if _, err := hal.NewRecorder(hal.RecordConfig{EngineWindow: -time.Second}); err == nil {
		t.Fatal("NewRecorder accepted a negative window")
	}
}

func TestRecorderHistoryAndState(t *testing.T) {
	r, c, logs := newRecorder(t, hal.RecordConfig{EngineWindow: 10 * time.Second})
	ctx := context.Background()

	must(t, r.Feedback(ctx, hal.PatternSeen))
	c.Advance(time.Second)
	must(t, r.Unlock(ctx))
	if got := r.State().Lock; got != hal.Unlocked {
		t.Fatalf("after Unlock: %q", got)
	}
	c.Advance(time.Second)
	must(t, r.AuthorizeEngineStart(ctx))
	if got, want := r.State().EngineAuthorizedUntil, t0.Add(12*time.Second); !got.Equal(want) {
		t.Fatalf("EngineAuthorizedUntil = %v, want %v", got, want)
	}
	c.Advance(time.Second)
	must(t, r.Lock(ctx))
	if got := r.State().Lock; got != hal.Locked {
		t.Fatalf("after Lock: %q", got)
	}

	want := []hal.Action{
		{Kind: hal.ActionFeedback, Pattern: hal.PatternSeen, At: t0},
		{Kind: hal.ActionUnlock, At: t0.Add(time.Second)},
		{Kind: hal.ActionEngineStart, Window: 10 * time.Second, At: t0.Add(2 * time.Second)},
		{Kind: hal.ActionLock, At: t0.Add(3 * time.Second)},
	}
	if got := r.History(); !slices.Equal(got, want) {
		t.Fatalf("history:\n got %+v\nwant %+v", got, want)
	}

	// The accessor returns a copy.
	h := r.History()
	h[0].Kind = hal.ActionUnlock
	if r.History()[0].Kind != hal.ActionFeedback {
		t.Fatal("History returned the internal slice")
	}

	// One JSON line per action with the stable keys.
	var lines []map[string]any
	for line := range strings.Lines(logs.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 4 {
		t.Fatalf("got %d log lines, want 4:\n%s", len(lines), logs)
	}
	for i, a := range want {
		if lines[i]["action"] != string(a.Kind) {
			t.Errorf("log line %d action = %v, want %s", i, lines[i]["action"], a.Kind)
		}
	}
	if lines[0]["pattern"] != "seen" {
		t.Errorf("feedback log lacks pattern: %v", lines[0])
	}
	if lines[2]["window_ms"] != float64(10000) {
		t.Errorf("engine log window_ms = %v, want 10000", lines[2]["window_ms"])
	}
}

func TestRecorderEngineWindowEndsByItself(t *testing.T) {
	r, c, _ := newRecorder(t, hal.RecordConfig{})
	must(t, r.AuthorizeEngineStart(context.Background()))
	end := t0.Add(hal.DefaultRecordWindow)
	c.Advance(hal.DefaultRecordWindow - time.Nanosecond)
	if got := r.State().EngineAuthorizedUntil; !got.Equal(end) {
		t.Fatalf("just before the end: %v, want %v", got, end)
	}
	c.Advance(time.Nanosecond)
	if got := r.State().EngineAuthorizedUntil; !got.IsZero() {
		t.Fatalf("at the end of the window: %v, want zero", got)
	}
}

func TestRecorderEngineWindowExtends(t *testing.T) {
	r, c, _ := newRecorder(t, hal.RecordConfig{EngineWindow: 10 * time.Second})
	ctx := context.Background()
	must(t, r.AuthorizeEngineStart(ctx))
	c.Advance(6 * time.Second)
	must(t, r.AuthorizeEngineStart(ctx))
	c.Advance(6 * time.Second)
	if got, want := r.State().EngineAuthorizedUntil, t0.Add(16*time.Second); !got.Equal(want) {
		t.Fatalf("EngineAuthorizedUntil = %v, want %v", got, want)
	}
}

func TestRecorderCloseEndsAuthorizationAndRefusesActions(t *testing.T) {
	r, _, _ := newRecorder(t, hal.RecordConfig{})
	ctx := context.Background()
	must(t, r.AuthorizeEngineStart(ctx))
	must(t, r.Close())
	must(t, r.Close())
	if got := r.State().EngineAuthorizedUntil; !got.IsZero() {
		t.Fatalf("authorization survived Close: %v", got)
	}
	for name, call := range map[string]func() error{
		"Unlock":               func() error { return r.Unlock(ctx) },
		"Lock":                 func() error { return r.Lock(ctx) },
		"AuthorizeEngineStart": func() error { return r.AuthorizeEngineStart(ctx) },
		"Feedback":             func() error { return r.Feedback(ctx, hal.PatternDenied) },
	} {
		if err := call(); !errors.Is(err, hal.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if got := len(r.History()); got != 1 {
		t.Fatalf("history has %d actions after Close, want only the one before", got)
	}
}

func TestRecorderRefusesCancelledContextAndUnknownPattern(t *testing.T) {
	r, _, _ := newRecorder(t, hal.RecordConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Unlock(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Unlock(cancelled) = %v", err)
	}
	if err := r.AuthorizeEngineStart(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("AuthorizeEngineStart(cancelled) = %v", err)
	}
	if err := r.Feedback(context.Background(), "party"); !errors.Is(err, hal.ErrUnknownPattern) {
		t.Fatalf("Feedback(party) = %v, want ErrUnknownPattern", err)
	}
	s := r.State()
	if s.Lock != hal.Locked || !s.EngineAuthorizedUntil.IsZero() || len(r.History()) != 0 {
		t.Fatalf("refused calls changed something: %+v %v", s, r.History())
	}
}

func TestRecorderConcurrent(t *testing.T) {
	r, c, _ := newRecorder(t, hal.RecordConfig{})
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				must(t, r.Unlock(ctx))
				must(t, r.AuthorizeEngineStart(ctx))
				must(t, r.Feedback(ctx, hal.PatternAllowed))
				must(t, r.Lock(ctx))
				c.Advance(time.Millisecond)
				_ = r.State()
				_ = r.History()
			}
		})
	}
	wg.Wait()
	if got := len(r.History()); got != 8*50*4 {
		t.Fatalf("history has %d actions, want %d", got, 8*50*4)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Error(err)
	}
}
