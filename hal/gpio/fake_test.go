package gpio

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

// The fakes below stand in for periph's gpiotest.Pin, which this module
// cannot import: gpiotest needs github.com/jonboulle/clockwork, which is not
// in go.mod. fakePin additionally journals every Out call with the fake
// clock's time, which is what the tests assert on.

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// stuck guards against a hung test; it is not a timing assertion.
const stuck = 10 * time.Second

// fakeClock is a manual clock: timers fire, in order and synchronously,
// inside Advance.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
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

func newFakeClock() *fakeClock { return &fakeClock{now: t0, changed: make(chan struct{})} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
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
	end := c.now.Add(d)
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
		c.now = next.at
		c.notifyLocked()
		c.mu.Unlock()
		next.f()
		c.mu.Lock()
	}
	c.now = end
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

// event is one Out call: which pin, which level, when (since t0).
type event struct {
	pin   string
	level gpio.Level
	at    time.Duration
}

func (e event) String() string { return fmt.Sprintf("%s=%v@%v", e.pin, e.level, e.at) }

// journal records the Out calls of all the pins of one test, in order.
type journal struct {
	mu      sync.Mutex
	clock   interface{ Now() time.Time }
	events  []event
	changed chan struct{}
}

func newJournal(c interface{ Now() time.Time }) *journal {
	return &journal{clock: c, changed: make(chan struct{})}
}

func (j *journal) add(pin string, l gpio.Level) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, event{pin: pin, level: l, at: j.clock.Now().Sub(t0)})
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

// fakePin is a gpio.PinIO that journals its Out calls.
type fakePin struct {
	name string
	j    *journal

	mu      sync.Mutex
	level   gpio.Level
	pull    gpio.Pull
	isInput bool
	outErr  error // returned by Out when set
	closed  int   // Close calls
}

var _ gpio.PinIO = (*fakePin)(nil)

func (p *fakePin) String() string   { return "fake(" + p.name + ")" }
func (p *fakePin) Halt() error      { return nil }
func (p *fakePin) Name() string     { return p.name }
func (p *fakePin) Number() int      { return 0 }
func (p *fakePin) Function() string { return "" }

func (p *fakePin) In(pull gpio.Pull, edge gpio.Edge) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if edge != gpio.NoEdge {
		return errors.New("fakePin: edges not supported")
	}
	p.isInput, p.pull = true, pull
	return nil
}

func (p *fakePin) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.level
}

func (p *fakePin) WaitForEdge(time.Duration) bool { return false }
func (p *fakePin) Pull() gpio.Pull                { return p.pull }
func (p *fakePin) DefaultPull() gpio.Pull         { return gpio.PullNoChange }

func (p *fakePin) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.outErr != nil {
		return p.outErr
	}
	p.isInput, p.level = false, l
	if p.j != nil {
		p.j.add(p.name, l)
	}
	return nil
}

func (p *fakePin) PWM(gpio.Duty, physic.Frequency) error { return errors.New("fakePin: no PWM") }

// Close is what Open's release calls on a character-device line.
func (p *fakePin) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed++
}

func (p *fakePin) set(l gpio.Level) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.level = l
}
