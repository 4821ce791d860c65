package pcsc

import (
	"sync"
	"time"

	"github.com/dkvehicled/dkvehicled/reader"
)

// health keeps a reader's reader.Health; its methods are safe for concurrent
// use.
type health struct {
	now func() time.Time

	mu     sync.Mutex
	h      reader.Health
	failed bool // an error happened since the reader was last OK
}

func newHealth(now func() time.Time) *health {
	return &health{now: now, h: reader.Health{Detail: "starting", Since: now()}}
}

// get returns a copy of the current state.
func (s *health) get() reader.Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h
}

// ok marks the reader usable. It reports whether this ends a failure, which
// counts as a recovery.
func (s *health) ok(detail, firmware string, ecp bool) (recovered bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.h.OK {
		s.h.OK, s.h.Since = true, s.now()
	}
	if s.failed {
		s.failed, recovered = false, true
		s.h.Recoveries++
	}
	s.h.Detail, s.h.Firmware, s.h.ECP = detail, firmware, ecp
	return recovered
}

// fail marks the reader unusable because of detail. Only the first failure
// after an OK state counts as an error, so retries while the reader stays
// away do not inflate Errors; it reports whether this one counted.
func (s *health) fail(detail string) (counted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failed {
		s.h.Errors++
		s.failed, counted = true, true
	}
	if s.h.OK {
		s.h.OK, s.h.Since = false, s.now()
	}
	s.h.Detail, s.h.ECP = detail, false
	return counted
}

// noECP records that ECP frames stopped working.
func (s *health) noECP() {
	s.mu.Lock()
	s.h.ECP = false
	s.mu.Unlock()
}
