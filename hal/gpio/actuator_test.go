package gpio

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"

	"github.com/dkvehicled/dkvehicled/hal"
)

const ms = time.Millisecond

// rig is an Actuator on gpiotest pins with a fake clock.
type rig struct {
	a                                       *Actuator
	cfg                                     Config
	clock                                   *fakeClock
	j                                       *journal
	unlock, lock, engine, led, buzzer, door *recPin
	logs                                    *bytes.Buffer
}

// testConfig wires every line, active-high, with the defaults.
func testConfig() Config {
	c := DefaultConfig()
	c.Unlock.Line = "UNLOCK"
	c.Lock.Line = "LOCK"
	c.Engine.Line = "ENGINE"
	c.LED.Line = "LED"
	c.Buzzer.Line = "BUZZER"
	c.DoorInput.Line = "DOOR"
	return c
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	r := newPins()
	r.start(t, cfg)
	return r
}

// newPins makes the pins of a rig, all on the rig's clock, without an
// Actuator yet.
func newPins() *rig {
	r := &rig{clock: newFakeClock(), j: newJournal(), logs: &bytes.Buffer{}}
	pin := func(name string) *recPin { return newPin(name, r.clock.cw, r.j) }
	r.unlock, r.lock, r.engine = pin("UNLOCK"), pin("LOCK"), pin("ENGINE")
	r.led, r.buzzer, r.door = pin("LED"), pin("BUZZER"), pin("DOOR")
	return r
}

// start builds the rig's Actuator.
func (r *rig) start(t *testing.T, cfg Config) {
	t.Helper()
	a, err := New(cfg, Pins{
		Unlock: r.unlock, Lock: r.lock, Engine: r.engine,
		LED: r.led, Buzzer: r.buzzer, Door: r.door,
	}, WithClock(r.clock), WithLogger(slog.New(slog.NewTextHandler(lockedWriter(r.logs), &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	r.a, r.cfg = a, cfg
	t.Cleanup(func() { _ = a.Close() })
}

// outputs pairs each output pin with its configuration.
func (r *rig) outputs() []struct {
	p   *recPin
	out Output
} {
	return []struct {
		p   *recPin
		out Output
	}{{r.unlock, r.cfg.Unlock}, {r.lock, r.cfg.Lock}, {r.engine, r.cfg.Engine}, {r.led, r.cfg.LED}, {r.buzzer, r.cfg.Buzzer}}
}

// checkInactive reads every output's gpiotest.Pin: each must be at its
// inactive level (high when active-low).
func (r *rig) checkInactive(t *testing.T) {
	t.Helper()
	for _, o := range r.outputs() {
		if got, want := o.p.Read(), gpio.Level(o.out.ActiveLow); got != want {
			t.Errorf("%s reads %v, want %v (inactive, active_low=%v)", o.p.N, got, want, o.out.ActiveLow)
		}
	}
}

// checkLevel reads one gpiotest.Pin.
func checkLevel(t *testing.T, p *recPin, want gpio.Level) {
	t.Helper()
	if got := p.Read(); got != want {
		t.Fatalf("%s reads %v, want %v", p.N, got, want)
	}
}

// lockedWriter serializes writes of concurrent loggers to one buffer.
func lockedWriter(b *bytes.Buffer) *syncWriter { return &syncWriter{b: b} }

type syncWriter struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// inactiveAtStart is what New journals for testConfig: every output inactive
// (low when active-high), in the order unlock, lock, engine, led, buzzer.
func inactiveAtStart(at time.Duration) []event {
	return []event{
		{"UNLOCK", gpio.Low, at}, {"LOCK", gpio.Low, at}, {"ENGINE", gpio.Low, at},
		{"LED", gpio.Low, at}, {"BUZZER", gpio.Low, at},
	}
}

func checkEvents(t *testing.T, got, want []event) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("Out calls:\n got %v\nwant %v", got, want)
	}
}

// async runs f in a goroutine; the channel yields its error.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func pendingCall(t *testing.T, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("call returned (%v) before its pulse ended", err)
	default:
	}
}

func result(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(stuck):
		t.Fatal("call did not return")
		return nil
	}
}

func TestStartAndCloseNeverDriveActive(t *testing.T) {
	cfg := testConfig()
	cfg.Unlock.ActiveLow = true
	cfg.LED.ActiveLow = true
	r := newPins()
	// A crashed predecessor left every line at its active level.
	for _, p := range []*recPin{r.unlock, r.led} {
		p.L = gpio.Low
	}
	for _, p := range []*recPin{r.lock, r.engine, r.buzzer} {
		p.L = gpio.High
	}
	r.start(t, cfg)

	start := []event{
		{"UNLOCK", gpio.High, 0}, {"LOCK", gpio.Low, 0}, {"ENGINE", gpio.Low, 0},
		{"LED", gpio.High, 0}, {"BUZZER", gpio.Low, 0},
	}
	checkEvents(t, r.j.all(), start)
	r.checkInactive(t)
	if r.clock.pending() != 0 {
		t.Fatalf("%d timers pending after New", r.clock.pending())
	}
	if s := r.a.State(); s.Lock != hal.Locked || !s.EngineAuthorizedUntil.IsZero() {
		t.Fatalf("state after New = %+v", s)
	}

	r.clock.Advance(time.Minute)
	if err := r.a.Close(); err != nil {
		t.Fatal(err)
	}
	closing := []event{
		{"UNLOCK", gpio.High, time.Minute}, {"LOCK", gpio.Low, time.Minute}, {"ENGINE", gpio.Low, time.Minute},
		{"LED", gpio.High, time.Minute}, {"BUZZER", gpio.Low, time.Minute},
	}
	checkEvents(t, r.j.all(), append(start, closing...))
	r.checkInactive(t)
	if err := r.a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checkEvents(t, r.j.all(), append(start, closing...))
	r.checkInactive(t)
}

func TestUnlockAndLockPulses(t *testing.T) {
	cfg := testConfig()
	cfg.UnlockPulse = 500 * ms
	cfg.LockPulse = 300 * ms
	r := newRig(t, cfg)
	ctx := context.Background()

	call := async(func() error { return r.a.Unlock(ctx) })
	r.clock.waitTimers(t, 1)
	checkLevel(t, r.unlock, gpio.High)
	r.clock.Advance(499 * ms)
	if r.clock.pending() != 1 {
		t.Fatal("unlock pulse ended before 500 ms")
	}
	pendingCall(t, call)
	checkLevel(t, r.unlock, gpio.High)
	r.clock.Advance(1 * ms)
	if err := result(t, call); err != nil {
		t.Fatal(err)
	}
	checkLevel(t, r.unlock, gpio.Low)
	if got := r.a.State().Lock; got != hal.Unlocked {
		t.Fatalf("after Unlock: %q", got)
	}

	r.clock.Advance(time.Second) // now 1.5 s
	call = async(func() error { return r.a.Lock(ctx) })
	r.clock.waitTimers(t, 1)
	checkLevel(t, r.lock, gpio.High)
	r.clock.Advance(299 * ms)
	pendingCall(t, call)
	checkLevel(t, r.lock, gpio.High)
	r.clock.Advance(1 * ms)
	if err := result(t, call); err != nil {
		t.Fatal(err)
	}
	r.checkInactive(t)
	if got := r.a.State().Lock; got != hal.Locked {
		t.Fatalf("after Lock: %q", got)
	}

	if got := r.clock.requested(); !slices.Equal(got, []time.Duration{500 * ms, 300 * ms}) {
		t.Fatalf("pulse lengths asked of the clock = %v, want [500ms 300ms]", got)
	}
	checkEvents(t, r.j.all(), append(inactiveAtStart(0),
		event{"UNLOCK", gpio.High, 0}, event{"UNLOCK", gpio.Low, 500 * ms},
		event{"LOCK", gpio.High, 1500 * ms}, event{"LOCK", gpio.Low, 1800 * ms},
	))
	logs := r.logs.String()
	for _, want := range []string{"action=unlock line=UNLOCK ms=500", "action=lock line=LOCK ms=300"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

func TestActiveLowInversion(t *testing.T) {
	cfg := testConfig()
	cfg.Unlock.ActiveLow = true
	cfg.Engine.ActiveLow = true
	r := newRig(t, cfg)
	ctx := context.Background()

	r.checkInactive(t)
	call := async(func() error { return r.a.Unlock(ctx) })
	r.clock.waitTimers(t, 1)
	checkLevel(t, r.unlock, gpio.Low) // active
	r.clock.Advance(500 * ms)
	if err := result(t, call); err != nil {
		t.Fatal(err)
	}
	checkLevel(t, r.unlock, gpio.High)
	if err := r.a.AuthorizeEngineStart(ctx); err != nil {
		t.Fatal(err)
	}
	checkLevel(t, r.engine, gpio.Low) // active
	r.clock.Advance(cfg.EngineWindow)
	r.checkInactive(t)

	checkEvents(t, r.j.of("UNLOCK"), []event{
		{"UNLOCK", gpio.High, 0}, {"UNLOCK", gpio.Low, 0}, {"UNLOCK", gpio.High, 500 * ms},
	})
	checkEvents(t, r.j.of("ENGINE"), []event{
		{"ENGINE", gpio.High, 0}, {"ENGINE", gpio.Low, 500 * ms}, {"ENGINE", gpio.High, 500*ms + cfg.EngineWindow},
	})
	checkEvents(t, r.j.of("LOCK"), []event{{"LOCK", gpio.Low, 0}})
}

func TestEngineWindowEndsByItself(t *testing.T) {
	cfg := testConfig()
	cfg.EngineWindow = 20 * time.Second
	r := newRig(t, cfg)

	if err := r.a.AuthorizeEngineStart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := r.a.State().EngineAuthorizedUntil, t0.Add(20*time.Second); !got.Equal(want) {
		t.Fatalf("EngineAuthorizedUntil = %v, want %v", got, want)
	}
	checkLevel(t, r.engine, gpio.High)
	r.clock.Advance(20*time.Second - time.Nanosecond)
	checkEvents(t, r.j.of("ENGINE"), []event{{"ENGINE", gpio.Low, 0}, {"ENGINE", gpio.High, 0}})
	checkLevel(t, r.engine, gpio.High)
	r.clock.Advance(time.Nanosecond)
	checkEvents(t, r.j.of("ENGINE"), []event{
		{"ENGINE", gpio.Low, 0}, {"ENGINE", gpio.High, 0}, {"ENGINE", gpio.Low, 20 * time.Second},
	})
	checkLevel(t, r.engine, gpio.Low)
	if got := r.a.State().EngineAuthorizedUntil; !got.IsZero() {
		t.Fatalf("EngineAuthorizedUntil after the window = %v", got)
	}
	if r.clock.pending() != 0 {
		t.Fatalf("%d timers left", r.clock.pending())
	}
	if !strings.Contains(r.logs.String(), "action=engine_start mode=window line=ENGINE window_ms=20000") ||
		!strings.Contains(r.logs.String(), "action=engine_window_end") {
		t.Fatalf("logs:\n%s", r.logs)
	}
}

func TestEngineWindowExtends(t *testing.T) {
	cfg := testConfig()
	cfg.EngineWindow = 30 * time.Second
	r := newRig(t, cfg)
	ctx := context.Background()

	must(t, r.a.AuthorizeEngineStart(ctx))
	r.clock.Advance(10 * time.Second)
	must(t, r.a.AuthorizeEngineStart(ctx))
	if got, want := r.a.State().EngineAuthorizedUntil, t0.Add(40*time.Second); !got.Equal(want) {
		t.Fatalf("EngineAuthorizedUntil = %v, want %v", got, want)
	}
	r.clock.Advance(25 * time.Second) // past the first window's end
	checkLevel(t, r.engine, gpio.High)
	r.clock.Advance(5*time.Second - time.Nanosecond)
	checkLevel(t, r.engine, gpio.High)
	r.clock.Advance(time.Nanosecond)
	checkEvents(t, r.j.of("ENGINE"), []event{
		{"ENGINE", gpio.Low, 0}, {"ENGINE", gpio.High, 0}, {"ENGINE", gpio.Low, 40 * time.Second},
	})
	checkLevel(t, r.engine, gpio.Low)
}

func TestEnginePulseMode(t *testing.T) {
	cfg := testConfig()
	cfg.EngineMode = EngineModePulse
	cfg.EnginePulse = 250 * ms
	cfg.EngineWindow = 15 * time.Second
	r := newRig(t, cfg)

	call := async(func() error { return r.a.AuthorizeEngineStart(context.Background()) })
	r.clock.waitTimers(t, 1)
	checkLevel(t, r.engine, gpio.High)
	r.clock.Advance(249 * ms)
	if r.clock.pending() != 1 {
		t.Fatal("engine pulse ended before 250 ms")
	}
	pendingCall(t, call)
	checkLevel(t, r.engine, gpio.High)
	r.clock.Advance(1 * ms)
	if err := result(t, call); err != nil {
		t.Fatal(err)
	}
	checkLevel(t, r.engine, gpio.Low)
	if got := r.clock.requested(); !slices.Equal(got, []time.Duration{250 * ms}) {
		t.Fatalf("durations asked of the clock = %v, want [250ms]", got)
	}
	checkEvents(t, r.j.of("ENGINE"), []event{
		{"ENGINE", gpio.Low, 0}, {"ENGINE", gpio.High, 0}, {"ENGINE", gpio.Low, 250 * ms},
	})
	if got, want := r.a.State().EngineAuthorizedUntil, t0.Add(15*time.Second); !got.Equal(want) {
		t.Fatalf("EngineAuthorizedUntil = %v, want %v", got, want)
	}
	r.clock.Advance(15*time.Second - 250*ms)
	if got := r.a.State().EngineAuthorizedUntil; !got.IsZero() {
		t.Fatalf("EngineAuthorizedUntil after the window = %v", got)
	}
	if r.clock.pending() != 0 {
		t.Fatalf("%d timers left", r.clock.pending())
	}
}

func TestCloseDuringWindow(t *testing.T) {
	r := newRig(t, testConfig())
	ctx := context.Background()
	must(t, r.a.AuthorizeEngineStart(ctx))
	r.clock.Advance(5 * time.Second)
	checkLevel(t, r.engine, gpio.High)
	must(t, r.a.Close())
	r.checkInactive(t)

	checkEvents(t, r.j.of("ENGINE"), []event{
		{"ENGINE", gpio.Low, 0}, {"ENGINE", gpio.High, 0}, {"ENGINE", gpio.Low, 5 * time.Second},
	})
	if r.clock.pending() != 0 {
		t.Fatalf("window timer survived Close: %d pending", r.clock.pending())
	}
	n := len(r.j.all())
	r.clock.Advance(time.Hour)
	if got := len(r.j.all()); got != n {
		t.Fatalf("Out calls after Close: %v", r.j.all()[n:])
	}
	if s := r.a.State(); !s.EngineAuthorizedUntil.IsZero() || s.DoorOpen != nil {
		t.Fatalf("state after Close = %+v", s)
	}
	for name, call := range map[string]func() error{
		"Unlock":               func() error { return r.a.Unlock(ctx) },
		"Lock":                 func() error { return r.a.Lock(ctx) },
		"AuthorizeEngineStart": func() error { return r.a.AuthorizeEngineStart(ctx) },
		"Feedback":             func() error { return r.a.Feedback(ctx, hal.PatternAllowed) },
	} {
		if err := call(); !errors.Is(err, hal.ErrClosed) {
			t.Errorf("%s after Close = %v, want hal.ErrClosed", name, err)
		}
	}
	if got := len(r.j.all()); got != n {
		t.Fatalf("Out calls after Close: %v", r.j.all()[n:])
	}
	r.checkInactive(t)
}

func TestCloseCutsPulseShort(t *testing.T) {
	r := newRig(t, testConfig())
	call := async(func() error { return r.a.Unlock(context.Background()) })
	r.clock.waitTimers(t, 1)
	r.clock.Advance(100 * ms)
	checkLevel(t, r.unlock, gpio.High)
	must(t, r.a.Close())
	if err := result(t, call); !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("Unlock cut by Close = %v, want hal.ErrClosed", err)
	}
	r.checkInactive(t)
	checkEvents(t, r.j.of("UNLOCK"), []event{
		{"UNLOCK", gpio.Low, 0}, {"UNLOCK", gpio.High, 0}, {"UNLOCK", gpio.Low, 100 * ms}, {"UNLOCK", gpio.Low, 100 * ms},
	})
	if got := r.a.State().Lock; got != hal.Locked {
		t.Fatalf("a cut pulse changed the lock state to %q", got)
	}
}

func TestCancelledContextDoesNothing(t *testing.T) {
	r := newRig(t, testConfig())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, call := range map[string]func() error{
		"Unlock":               func() error { return r.a.Unlock(ctx) },
		"AuthorizeEngineStart": func() error { return r.a.AuthorizeEngineStart(ctx) },
		"Feedback":             func() error { return r.a.Feedback(ctx, hal.PatternSeen) },
	} {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s(cancelled) = %v", name, err)
		}
	}
	checkEvents(t, r.j.all(), inactiveAtStart(0))
	r.checkInactive(t)
}

func TestPulsesDoNotOverlap(t *testing.T) {
	r := newRig(t, testConfig())
	ctx := context.Background()

	// Two unlocks and a lock at once: one pulse at a time, each full length.
	calls := []<-chan error{
		async(func() error { return r.a.Unlock(ctx) }),
		async(func() error { return r.a.Unlock(ctx) }),
		async(func() error { return r.a.Lock(ctx) }),
	}
	for i := range 3 {
		r.clock.waitTimers(t, 1)
		r.j.waitLen(t, 5+2*i+1)
		r.clock.Advance(500 * ms)
		r.j.waitLen(t, 5+2*i+2)
	}
	for _, c := range calls {
		must(t, result(t, c))
	}

	r.checkInactive(t)
	pulses := r.j.all()[5:]
	if len(pulses) != 6 {
		t.Fatalf("want 3 pulses, got %v", pulses)
	}
	for i := 0; i < len(pulses); i += 2 {
		on, off := pulses[i], pulses[i+1]
		if on.pin != off.pin || on.level != gpio.High || off.level != gpio.Low || off.at-on.at != 500*ms {
			t.Fatalf("pulse %d is not one 500 ms pulse on one line: %v", i/2, pulses)
		}
		if want := time.Duration(i/2) * 500 * ms; on.at != want {
			t.Fatalf("pulse %d starts at %v, want %v: %v", i/2, on.at, want, pulses)
		}
	}
}

func TestFeedbackPlaysAndIsReplaced(t *testing.T) {
	cfg := testConfig()
	cfg.Buzzer.ActiveLow = true
	cfg.Patterns.Allowed = Pattern{LED: []time.Duration{time.Second}, Buzzer: []time.Duration{100 * ms}}
	cfg.Patterns.Denied = Pattern{LED: []time.Duration{200 * ms, 100 * ms, 200 * ms}}
	r := newRig(t, cfg)
	ctx := context.Background()

	must(t, r.a.Feedback(ctx, hal.PatternAllowed)) // returns at once
	r.clock.waitTimers(t, 2)
	r.clock.Advance(100 * ms) // buzzer step ends
	r.j.waitLen(t, 5+3)
	r.clock.Advance(200 * ms) // LED is on, 700 ms to go

	must(t, r.a.Feedback(ctx, hal.PatternDenied)) // replaces it
	r.clock.waitTimers(t, 1)
	for range 3 {
		r.clock.waitTimers(t, 1)
		before := len(r.j.all())
		r.clock.Advance(r.clock.nextIn())
		r.j.waitLen(t, before+1)
	}
	r.clock.waitTimers(t, 0)
	r.checkInactive(t)

	checkEvents(t, r.j.of("LED"), []event{
		{"LED", gpio.Low, 0},
		{"LED", gpio.High, 0}, {"LED", gpio.Low, 300 * ms}, // allowed, cut short
		{"LED", gpio.High, 300 * ms}, {"LED", gpio.Low, 500 * ms}, // denied
		{"LED", gpio.High, 600 * ms}, {"LED", gpio.Low, 800 * ms},
	})
	checkEvents(t, r.j.of("BUZZER"), []event{
		{"BUZZER", gpio.High, 0}, {"BUZZER", gpio.Low, 0}, {"BUZZER", gpio.High, 100 * ms},
	})

	if err := r.a.Feedback(ctx, "party"); !errors.Is(err, hal.ErrUnknownPattern) {
		t.Fatalf("Feedback(party) = %v", err)
	}
}

func TestCloseStopsPattern(t *testing.T) {
	r := newRig(t, testConfig())
	must(t, r.a.Feedback(context.Background(), hal.PatternError))
	r.clock.waitTimers(t, 2)
	r.clock.Advance(50 * ms)
	checkLevel(t, r.led, gpio.High)
	checkLevel(t, r.buzzer, gpio.High)
	must(t, r.a.Close())
	if r.clock.pending() != 0 {
		t.Fatalf("pattern timers survived Close")
	}
	checkLevel(t, r.led, gpio.Low)
	checkLevel(t, r.buzzer, gpio.Low)
	for _, pin := range []string{"LED", "BUZZER"} {
		es := r.j.of(pin)
		if last := es[len(es)-1]; last.level != gpio.Low {
			t.Fatalf("%s left %v after Close: %v", pin, last.level, es)
		}
	}
}

func TestDoorInput(t *testing.T) {
	for _, tc := range []struct {
		activeLow bool
		pull      Pull
		level     gpio.Level
		open      bool
	}{
		{true, PullUp, gpio.Low, true},
		{true, PullUp, gpio.High, false},
		{false, PullDown, gpio.High, true},
		{false, PullAsIs, gpio.Low, false},
	} {
		cfg := testConfig()
		cfg.DoorInput.ActiveLow = tc.activeLow
		cfg.DoorInput.Pull = tc.pull
		r := newRig(t, cfg)
		if n := r.door.ins.Load(); n != 1 {
			t.Fatalf("door input configured %d times, want once", n)
		}
		if got := r.door.Pull(); got != tc.pull.periph() {
			t.Fatalf("door pull = %v, want %v", got, tc.pull.periph())
		}
		// gpiotest.Pin.In applies the bias: a pulled-up active-low switch
		// or a pulled-down active-high one reads closed at rest (and an
		// unbiased gpiotest line stays low).
		if s := r.a.State(); s.DoorOpen == nil || *s.DoorOpen {
			t.Errorf("active_low=%v pull=%v at rest: DoorOpen = %v, want false", tc.activeLow, tc.pull, s.DoorOpen)
		}
		r.door.set(tc.level)
		s := r.a.State()
		if s.DoorOpen == nil || *s.DoorOpen != tc.open {
			t.Errorf("active_low=%v level=%v: DoorOpen = %v, want %v", tc.activeLow, tc.level, s.DoorOpen, tc.open)
		}
		if es := r.j.of("DOOR"); len(es) != 0 {
			t.Fatalf("the door input was driven: %v", es)
		}
		must(t, r.a.Close())
		if s := r.a.State(); s.DoorOpen != nil {
			t.Fatalf("DoorOpen after Close = %v", *s.DoorOpen)
		}
	}

	// Not wired: nil.
	cfg := testConfig()
	cfg.DoorInput.Line = ""
	a, err := New(cfg, Pins{Unlock: newPin("U", nil, nil), Lock: newPin("L", nil, nil), Engine: newPin("E", nil, nil),
		LED: newPin("LED", nil, nil), Buzzer: newPin("B", nil, nil)}, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if s := a.State(); s.DoorOpen != nil {
		t.Fatalf("DoorOpen without a door input = %v", *s.DoorOpen)
	}
}

func TestEngineNotWired(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Unlock.Line, cfg.Lock.Line = "U", "L"
	a, err := New(cfg, Pins{Unlock: newPin("U", nil, nil), Lock: newPin("L", nil, nil)}, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.AuthorizeEngineStart(context.Background()); !errors.Is(err, ErrNotWired) {
		t.Fatalf("AuthorizeEngineStart without a line = %v, want ErrNotWired", err)
	}
	// Feedback without LED and buzzer is a no-op.
	must(t, a.Feedback(context.Background(), hal.PatternAllowed))
}

func TestNewErrors(t *testing.T) {
	cfg := testConfig()

	_, err := New(cfg, Pins{Unlock: newPin("U", nil, nil)})
	if err == nil || !strings.Contains(err.Error(), `hal.gpio.lock: line "LOCK" configured but no pin given`) {
		t.Fatalf("missing pin: %v", err)
	}

	cfg.Engine.Line = ""
	_, err = New(cfg, Pins{Unlock: newPin("U", nil, nil), Lock: newPin("L", nil, nil), Engine: newPin("E", nil, nil)})
	if err == nil || !strings.Contains(err.Error(), "hal.gpio.engine: pin E(0) given but no line configured") {
		t.Fatalf("extra pin: %v", err)
	}

	// A failing line is an error, and the others are still driven inactive.
	cfg = testConfig()
	cfg.DoorInput.Line = ""
	j := newJournal()
	bad := newPin("U", nil, j)
	bad.outErr = errors.New("device busy")
	others := []*recPin{newPin("L", nil, j), newPin("E", nil, j), newPin("LED", nil, j), newPin("B", nil, j)}
	for _, p := range others {
		p.L = gpio.High // left active
	}
	_, err = New(cfg, Pins{Unlock: bad, Lock: others[0], Engine: others[1], LED: others[2], Buzzer: others[3]})
	if err == nil || !strings.Contains(err.Error(), "hal.gpio.unlock: line U: drive inactive: device busy") {
		t.Fatalf("failing line: %v", err)
	}
	checkEvents(t, j.all(), []event{{"L", gpio.Low, 0}, {"E", gpio.Low, 0}, {"LED", gpio.Low, 0}, {"B", gpio.Low, 0}})
	for _, p := range others {
		checkLevel(t, p, gpio.Low)
	}

	cfg.UnlockPulse = 0
	if _, err := New(cfg, Pins{}); err == nil || !strings.Contains(err.Error(), "hal.gpio.unlock_pulse") {
		t.Fatalf("invalid config: %v", err)
	}
}

// TestConcurrentUse drives everything from many goroutines at once (run it
// with -race) on a clock whose timers fire at once, then checks that lock
// and unlock were never active together and that all ends inactive.
func TestConcurrentUse(t *testing.T) {
	clock := &instantClock{}
	j := newJournal()
	pinClock := clockwork.NewFakeClockAt(t0)
	pins := map[string]*recPin{}
	for _, n := range []string{"UNLOCK", "LOCK", "ENGINE", "LED", "BUZZER", "DOOR"} {
		pins[n] = newPin(n, pinClock, j)
	}
	cfg := testConfig()
	a, err := New(cfg, Pins{Unlock: pins["UNLOCK"], Lock: pins["LOCK"], Engine: pins["ENGINE"],
		LED: pins["LED"], Buzzer: pins["BUZZER"], Door: pins["DOOR"]},
		WithClock(clock), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for k := range 20 {
				switch (i + k) % 5 {
				case 0:
					must(t, a.Unlock(ctx))
				case 1:
					must(t, a.Lock(ctx))
				case 2:
					must(t, a.AuthorizeEngineStart(ctx))
				case 3:
					must(t, a.Feedback(ctx, []hal.Pattern{hal.PatternSeen, hal.PatternAllowed, hal.PatternDenied, hal.PatternError}[k%4]))
				case 4:
					_ = a.State()
				}
			}
		})
	}
	wg.Wait()
	must(t, a.Close())

	active := map[string]bool{}
	for _, e := range j.all() {
		active[e.pin] = e.level == gpio.High
		if active["LOCK"] && active["UNLOCK"] {
			t.Fatalf("lock and unlock active together at %v", e)
		}
	}
	for n, p := range pins {
		if n != "DOOR" && p.Read() != gpio.Low {
			t.Errorf("%s left active", n)
		}
	}
	if es := j.of("DOOR"); len(es) != 0 {
		t.Fatalf("the door input was driven: %v", es)
	}
}

// instantClock fires every timer at once, in its own goroutine.
type instantClock struct{}

func (*instantClock) Now() time.Time { return t0 }

func (*instantClock) AfterFunc(_ time.Duration, f func()) Timer {
	t := time.AfterFunc(0, f)
	return t
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Error(err)
	}
}
