// Package sim is an in-process reader: a simulated phone (anything that
// answers APDUs, usually an endpoint.Phone) is placed on it and removed from
// it, as a hand would. The daemon's simulator and the tests use it in place
// of hardware.
package sim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/reader"
)

// ErrOccupied reports a Place on a reader that already holds a phone.
var ErrOccupied = errors.New("sim: a phone already lies on this reader")

// Reader is a simulated reader. It is safe for concurrent use.
type Reader struct {
	name  string
	since time.Time

	mu      sync.Mutex
	phone   apdu.Transceiver
	gen     uint64        // bumped by every Place and Remove
	served  uint64        // the placement WaitCard last returned
	changed chan struct{} // closed and replaced on every change
	closed  bool
}

// New returns an empty reader.
func New(name string) *Reader {
	return &Reader{name: name, since: time.Now(), changed: make(chan struct{})}
}

// resetter is implemented by phones that drop their session when the field
// goes away (endpoint.Phone does).
type resetter interface{ Reset() }

func (r *Reader) bump() {
	r.gen++
	close(r.changed)
	r.changed = make(chan struct{})
}

// Place puts a phone in the reader's field.
func (r *Reader) Place(phone apdu.Transceiver) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.phone != nil {
		return ErrOccupied
	}
	if p, ok := phone.(resetter); ok {
		p.Reset()
	}
	r.phone = phone
	r.bump()
	return nil
}

// Remove takes the phone away and returns it (nil if there was none).
func (r *Reader) Remove() apdu.Transceiver {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.phone
	if p == nil {
		return nil
	}
	if rs, ok := p.(resetter); ok {
		rs.Reset()
	}
	r.phone = nil
	r.bump()
	return p
}

// Phone returns what lies on the reader (nil when empty).
func (r *Reader) Phone() apdu.Transceiver {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.phone
}

// Name implements reader.Reader.
func (r *Reader) Name() string { return r.name }

// Health implements reader.Reader: a simulated reader is always healthy.
func (r *Reader) Health() reader.Health {
	return reader.Health{OK: true, Detail: "simulated", Since: r.since}
}

// Close implements reader.Reader; a waiting WaitCard returns.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		r.bump()
	}
	return nil
}

// WaitCard implements reader.Reader: it returns once per placement.
func (r *Reader) WaitCard(ctx context.Context) (reader.Card, error) {
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return nil, fmt.Errorf("%w: reader %s closed", reader.ErrUnavailable, r.name)
		}
		if r.phone != nil && r.served != r.gen {
			r.served = r.gen
			c := &card{r: r, gen: r.gen, phone: r.phone}
			r.mu.Unlock()
			return c, nil
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		}
	}
}

// card is one placement of a phone.
type card struct {
	r     *Reader
	gen   uint64
	phone apdu.Transceiver
}

func (c *card) present() (bool, <-chan struct{}) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	return c.r.gen == c.gen && !c.r.closed, c.r.changed
}

// Transceive passes the command to the phone while it lies on the reader.
func (c *card) Transceive(ctx context.Context, cmd []byte) ([]byte, error) {
	if ok, _ := c.present(); !ok {
		return nil, reader.ErrCardGone
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	resp, err := c.phone.Transceive(ctx, cmd)
	if ok, _ := c.present(); !ok {
		return nil, reader.ErrCardGone
	}
	return resp, err
}

// WaitRemoved returns when the phone was taken away.
func (c *card) WaitRemoved(ctx context.Context) error {
	for {
		ok, ch := c.present()
		if !ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Close releases the card; the phone stays where it lies.
func (c *card) Close() error { return nil }
