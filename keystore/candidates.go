package keystore

import (
	"slices"
	"time"

	"github.com/dkvehicled/dkvehicled/internal/secret"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

// Candidate is an active endpoint with a Kpersistent, as the fast path tries it.
type Candidate struct {
	KeyID       keys.KeyID
	PublicKey   []byte
	Kpersistent secret.Bytes
	LastUsed    time.Time
	StoreOrder  int
	// Endpoint is the record as last committed. It is shared: do not modify it.
	Endpoint *Endpoint
}

// FastCandidates returns the fast-path candidates in the order of PROTOCOL.md
// 3.3: most recently used first, never-used keys last, ties in store order.
// The slice is shared and must not be modified; the store keeps it current
// after every committed Update, so a tap never decodes the whole store.
func (s *Store) FastCandidates() []*Candidate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cands
}

func candidateOf(e *Endpoint) *Candidate {
	if e.State != StateActive || len(e.Kpersistent) == 0 {
		return nil
	}
	return &Candidate{KeyID: e.KeyID, PublicKey: e.PublicKey, Kpersistent: e.Kpersistent, LastUsed: e.LastUsed, StoreOrder: e.StoreOrder, Endpoint: e}
}

func candidateBefore(a, b *Candidate) int {
	switch {
	case a.LastUsed.Equal(b.LastUsed):
		return a.StoreOrder - b.StoreOrder
	case a.LastUsed.IsZero():
		return 1
	case b.LastUsed.IsZero():
		return -1
	case a.LastUsed.After(b.LastUsed):
		return -1
	}
	return 1
}

func (s *Store) loadCandidates() error {
	var cands []*Candidate
	err := s.View(func(tx *Tx) error {
		eps, err := tx.Endpoints()
		for _, e := range eps {
			if c := candidateOf(e); c != nil {
				cands = append(cands, c)
			}
		}
		return err
	})
	slices.SortFunc(cands, candidateBefore)
	s.mu.Lock()
	s.cands = cands
	s.mu.Unlock()
	return err
}

// updateCandidates applies committed endpoint writes to the candidate list:
// a copy without the touched keys, then each touched key inserted in place.
func (s *Store) updateCandidates(touched map[[20]byte]*Endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make([]*Candidate, 0, len(s.cands)+len(touched))
	for _, c := range s.cands {
		if _, ok := touched[c.KeyID]; !ok {
			next = append(next, c)
		}
	}
	for _, e := range touched {
		c := candidateOf(e)
		if c == nil {
			continue
		}
		i, _ := slices.BinarySearchFunc(next, c, candidateBefore)
		next = slices.Insert(next, i, c)
	}
	s.cands = next
}
