package gpio

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// The actuator under test drives periph's gpiotest.Pin. Final and current
// levels are read from the gpiotest.Pin itself (Read, L); recPin wraps it
// only to keep the ordered history of Out calls, which gpiotest.Pin does not
// keep and which proves that no output ever went active at start or at
// Close.
//
// Time is one clockwork.FakeClock: it is the Clock of every gpiotest.Pin of a
// rig, it stamps the history and it is the time of fakeClock, the
// actuator's Clock. fakeClock keeps its own timers so that they fire in
// order, synchronously, each at its own time, inside Advance: clockwork's
// AfterFunc calls f in a new goroutine once Advance has already moved the
// clock to its end, so the end of an engine-start window would be stamped
// with the wrong time and tests would have to poll for it.

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// stuck guards against a hung test; it is not a timing assertion.
const stuck = 10 * time.Second

// fakeClock is the actuator's Clock on a clockwork fake clock: timers fire,
// in order and synchronously, inside Advance.
type fakeClock struct {
	cw *clockwork.FakeClock // the time; also the Clock of the rig's pins

	mu      sync.Mutex
	timers  []*fakeTimer
	asked   []time.Duration // every AfterFunc duration, in order
	changed chan struct{}   // closed and replaced whenever timers change
}

type fakeTimer struct {
	c    *fakeClock
	at   time.Time
	f    func()
	done bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{cw: clockwork.NewFakeClockAt(t0), changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time { return c.cw.Now() }

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.cw.Now().Add(d), f: f}
	c.timers = append(c.timers, t)
	c.asked = append(c.asked, d)
	c.notifyLocked()
	return t
}

func (t *fakeTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	c.timers = slices.DeleteFunc(c.timers, func(o *fakeTimer) bool { return o == t })
	c.notifyLocked()
	return true
}

func (c *fakeClock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Advance moves the clock forward by d, firing every timer due on the way at
// its own time.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.cw.Now().Add(d)
	for {
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			break
		}
		next.done = true
		c.timers = slices.DeleteFunc(c.timers, func(o *fakeTimer) bool { return o == next })
		c.cw.Advance(next.at.Sub(c.cw.Now()))
		c.notifyLocked()
		c.mu.Unlock()
		next.f()
		c.mu.Lock()
	}
	c.cw.Advance(end.Sub(c.cw.Now()))
	c.mu.Unlock()
}

// pending is the number of timers not yet fired or stopped.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// requested returns every duration passed to AfterFunc so far.
func (c *fakeClock) requested() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.asked)
}

// nextIn is the time to the earliest pending timer.
func (c *fakeClock) nextIn() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cw.Now()
	var next time.Duration = -1
	for _, t := range c.timers {
		if d := t.at.Sub(now); next < 0 || d < next {
			next = d
		}
	}
	return next
}

// waitTimers waits until exactly n timers are pending.
func (c *fakeClock) waitTimers(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(stuck)
	for {
		c.mu.Lock()
		got, ch := len(c.timers), c.changed
		c.mu.Unlock()
		if got == n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("waiting for %d pending timers, have %d", n, got)
		}
	}
}

// event is one Out call: which pin, which level, when (since t0, by the
// pin's Clock).
type event struct {
	pin   string
	level gpio.Level
	at    time.Duration
}

func (e event) String() string { return fmt.Sprintf("%s=%v@%v", e.pin, e.level, e.at) }

// journal records the Out calls of all the pins of one test, in order.
type journal struct {
	mu      sync.Mutex
	events  []event
	changed chan struct{}
}

func newJournal() *journal { return &journal{changed: make(chan struct{})} }

func (j *journal) add(e event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, e)
	close(j.changed)
	j.changed = make(chan struct{})
}

// all returns every event so far.
func (j *journal) all() []event {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.events)
}

// of returns the events of one pin.
func (j *journal) of(pin string) []event {
	var es []event
	for _, e := range j.all() {
		if e.pin == pin {
			es = append(es, e)
		}
	}
	return es
}

// waitLen waits until the journal holds n events.
func (j *journal) waitLen(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(stuck)
	for {
		j.mu.Lock()
		got, ch := len(j.events), j.changed
		j.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("waiting for %d Out calls, have %d: %v", n, got, j.all())
		}
	}
}

// recPin is a gpiotest.Pin that journals each Out call, stamped with the
// pin's Clock, before handing it to the gpiotest.Pin.
type recPin struct {
	*gpiotest.Pin
	j      *journal // nil: Out calls are not journaled
	outErr error    // when set, Out fails and leaves the line alone

	ins    atomic.Int32 // In calls
	closed atomic.Int32 // Close calls (what Open's release does)
}

var _ gpio.PinIO = (*recPin)(nil)

// newPin returns a journaled gpiotest.Pin called name on clock c; a nil c is
// a fake clock standing at t0, a nil j journals nothing.
func newPin(name string, c clockwork.Clock, j *journal) *recPin {
	if c == nil {
		c = clockwork.NewFakeClockAt(t0)
	}
	return &recPin{Pin: &gpiotest.Pin{N: name, Clock: c}, j: j}
}

func (p *recPin) Out(l gpio.Level) error {
	if p.outErr != nil {
		return p.outErr
	}
	if p.j != nil {
		p.j.add(event{pin: p.N, level: l, at: p.Clock.Now().Sub(t0)})
	}
	return p.Pin.Out(l)
}

func (p *recPin) In(pull gpio.Pull, edge gpio.Edge) error {
	p.ins.Add(1)
	return p.Pin.In(pull, edge)
}

// Close counts the release of a character-device line.
func (p *recPin) Close() { p.closed.Add(1) }

// set is the outside world driving an input line.
func (p *recPin) set(l gpio.Level) {
	p.Pin.Lock()
	defer p.Pin.Unlock()
	p.L = l
}
