package transaction

import (
	"context"
	"sync"
	"time"
)

// apduContext gives each APDU of a transaction its own deadline with a single
// timer for the whole transaction: before each exchange the timer is re-armed
// for that exchange. Its Done channel closes when the running exchange's time
// is up or the parent ends; either ends the transaction, so it never reopens.
type apduContext struct {
	context.Context // the parent

	mu       sync.Mutex
	deadline time.Time
	done     chan struct{}
	err      error
	timer    *time.Timer
	stop     func() bool // detaches from the parent
}

func newAPDUContext(parent context.Context) *apduContext {
	c := &apduContext{Context: parent, done: make(chan struct{})}
	c.stop = context.AfterFunc(parent, func() { c.cancel(parent.Err()) })
	return c
}

// arm starts the time of the next exchange, ending at d.
func (c *apduContext) arm(d time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.deadline = d
	if c.timer == nil {
		c.timer = time.AfterFunc(time.Until(d), func() { c.cancel(context.DeadlineExceeded) })
		return
	}
	c.timer.Reset(time.Until(d))
}

func (c *apduContext) cancel(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
		close(c.done)
	}
}

// release stops the timer and detaches from the parent.
func (c *apduContext) release() {
	c.stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
}

// Deadline implements context.Context.
func (c *apduContext) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline, !c.deadline.IsZero()
}

// Done implements context.Context.
func (c *apduContext) Done() <-chan struct{} { return c.done }

// Err implements context.Context.
func (c *apduContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
