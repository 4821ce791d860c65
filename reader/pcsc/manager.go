//go:build pcsc

package pcsc

import (
	"errors"
	"sync"

	"github.com/ebfe/scard"

	"github.com/dkvehicled/dkvehicled/reader"
)

// Manager is the daemon's connection to pcscd. It lists readers and opens
// the configured ones, and it makes sure that two Readers never use the same
// PC/SC reader.
//
// Every Reader owns its PC/SC contexts instead of sharing the Manager's:
// pcsc-lite serialises the calls made on one context, and a reader waiting
// for a card would otherwise hold up the exchanges of another.
type Manager struct {
	mu      sync.Mutex
	sc      *scard.Context // for ListReaders; nil until needed again
	claims  map[string]*pcscReader
	readers map[*pcscReader]struct{}
	closed  bool
}

// NewManager connects to pcscd. It fails when pcscd is not reachable.
func NewManager() (*Manager, error) {
	sc, err := establish()
	if err != nil {
		return nil, err
	}
	return &Manager{sc: sc, claims: map[string]*pcscReader{}, readers: map[*pcscReader]struct{}{}}, nil
}

// ListReaders returns the names of the readers pcscd knows, in its order.
// After a restart of pcscd it connects again.
func (m *Manager) ListReaders() ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	for retried := false; ; retried = true {
		if m.sc == nil {
			sc, err := establish()
			if err != nil {
				return nil, err
			}
			m.sc = sc
		}
		names, err := listReaders(m.sc)
		if err == nil || retried || !errors.Is(err, reader.ErrUnavailable) {
			return names, err
		}
		m.sc.Release()
		m.sc = nil
	}
}

// Open starts using the reader that opts select. It returns at once even
// when the reader is missing or pcscd is down: the Reader then reports
// itself unhealthy and keeps looking for it in WaitCard. It fails only for
// invalid options. The Reader also implements reader.Feedbacker.
func (m *Manager) Open(opts Options) (reader.Reader, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	r := newReader(m, o)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	m.readers[r] = struct{}{}
	m.mu.Unlock()
	if err := r.setup(); err != nil {
		r.fail(err)
	}
	return r, nil
}

// Close closes every Reader opened from m and disconnects from pcscd.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	readers := make([]*pcscReader, 0, len(m.readers))
	for r := range m.readers {
		readers = append(readers, r)
	}
	sc := m.sc
	m.sc = nil
	m.mu.Unlock()
	for _, r := range readers {
		r.Close()
	}
	if sc != nil {
		sc.Release()
	}
	return nil
}

// claim picks the PC/SC reader for r among names, skipping those other
// Readers use, and records it as r's.
func (m *Manager) claim(r *pcscReader, names []string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dev, ok := pick(r.o.Reader, names, func(n string) bool {
		owner, used := m.claims[n]
		return used && owner != r
	})
	if ok {
		m.claims[dev] = r
	}
	return dev, ok
}

// unclaim gives dev up if r holds it.
func (m *Manager) unclaim(r *pcscReader, dev string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.claims[dev] == r {
		delete(m.claims, dev)
	}
}

// forget drops a closed Reader.
func (m *Manager) forget(r *pcscReader) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.readers, r)
}
