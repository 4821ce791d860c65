package daemon

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/keystore"
)

// subscriberBuffer is how many events a slow subscriber may lag behind
// before events are dropped for it.
const subscriberBuffer = 256

// bus fans events out to subscribers without ever blocking on one, and keeps
// every event in the store's audit log.
type bus struct {
	store *keystore.Store
	now   func() time.Time

	mu     sync.Mutex
	seq    uint64
	subs   map[*subscription]struct{}
	closed bool
}

func newBus(store *keystore.Store, now func() time.Time) *bus {
	return &bus{store: store, now: now, subs: map[*subscription]struct{}{}}
}

// publish stamps the event, records it in the audit log and delivers it.
func (b *bus) publish(ev control.Event) (control.Event, error) {
	b.mu.Lock()
	b.seq++
	ev.Seq, ev.Time = b.seq, b.now().UTC()
	for s := range b.subs {
		select {
		case s.ch <- ev:
		default:
			s.dropped.Add(1)
		}
	}
	b.mu.Unlock()
	data, err := json.Marshal(ev)
	if err != nil {
		return ev, err
	}
	return ev, b.store.Update(func(tx *keystore.Tx) error {
		_, err := tx.AppendAudit(data)
		return err
	})
}

// Subscribe implements control.Handler.
func (b *bus) subscribe() *subscription {
	s := &subscription{b: b, ch: make(chan control.Event, subscriberBuffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.ch)
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

// close ends every subscription.
func (b *bus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		delete(b.subs, s)
		close(s.ch)
	}
}

type subscription struct {
	b       *bus
	ch      chan control.Event
	dropped atomic.Uint64
	once    sync.Once
}

func (s *subscription) Events() <-chan control.Event { return s.ch }
func (s *subscription) Dropped() uint64              { return s.dropped.Load() }

func (s *subscription) Stop() {
	s.once.Do(func() {
		s.b.mu.Lock()
		defer s.b.mu.Unlock()
		if _, ok := s.b.subs[s]; ok {
			delete(s.b.subs, s)
			close(s.ch)
		}
	})
}
