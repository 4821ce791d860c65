// Package keystore is the vehicle's persistent store, one bbolt file: the
// vehicle identity, the endpoints (phones) with their keys and Kpersistent,
// the slot table with its immobilizer tokens, the pairing verifier and the
// audit log. Every logical change is one bbolt Update, so a friend's key and
// its slot binding land together or not at all. The file carries a schema
// version; a file from a newer dkvehicled, a corrupt file or a file that is
// not a dkvehicled store is refused with a clear error.
package keystore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the store layout this code reads and writes.
const SchemaVersion = 1

// Errors a caller can test with errors.Is.
var (
	ErrLocked      = errors.New("keystore: store is locked by another process")
	ErrCorrupt     = errors.New("keystore: store is corrupt")
	ErrNewerSchema = errors.New("keystore: store was written by a newer dkvehicled")
	ErrNotAStore   = errors.New("keystore: file is not a dkvehicled store")
	ErrNotFound    = errors.New("keystore: not found")
)

var (
	bucketMeta      = []byte("meta")
	bucketEndpoints = []byte("endpoints")
	bucketSlots     = []byte("slots")
	bucketAudit     = []byte("audit")

	keySchema    = []byte("schema")
	keyOwner     = []byte("owner")
	keyIdentity  = []byte("identity")
	keyNextOrder = []byte("next_order")
	keyVerifier  = []byte("verifier")
	keyAuditSeq  = []byte("audit_seq")
)

// Options configure Open.
type Options struct {
	// LockTimeout bounds the wait for the file lock (default 1 s).
	LockTimeout time.Duration
	// NoSync skips fsync after each commit. Only benchmarks set it: the
	// daemon keeps fsync on.
	NoSync bool
	// ReadOnly opens the store for inspection (a shared lock).
	ReadOnly bool
	// AuditLimit bounds the audit log (default 10000 entries).
	AuditLimit int
}

// Store is an open store. It is safe for concurrent use.
type Store struct {
	db         *bolt.DB
	path       string
	auditLimit int

	mu    sync.Mutex
	cands []*Candidate // fast-path candidates, sorted; replaced, never mutated
}

// Open opens or creates the store at path (mode 0600).
func Open(path string, o Options) (s *Store, err error) {
	if o.LockTimeout <= 0 {
		o.LockTimeout = time.Second
	}
	if o.AuditLimit <= 0 {
		o.AuditLimit = 10000
	}
	var db *bolt.DB
	defer func() {
		// bbolt panics on some kinds of damage; never let a bad file crash us.
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			}
			s, err = nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, r)
		}
	}()
	// A damaged file can also make bbolt read the memory map past its end
	// (a key's offset, a page id): turn that fault into a panic too.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if o.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("keystore: %w", err)
		}
	}
	if err := precheck(path, o.LockTimeout); err != nil {
		return nil, err
	}
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: o.LockTimeout, NoSync: o.NoSync, ReadOnly: o.ReadOnly, FreelistType: bolt.FreelistMapType})
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("%w: %s (is another dkvehicled running?)", ErrLocked, path)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
			errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
			return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
		}
		return nil, fmt.Errorf("keystore: open %s: %w", path, err)
	}
	s = &Store{db: db, path: path, auditLimit: o.AuditLimit}
	if err := s.checkPages(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.init(o.ReadOnly); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadCandidates(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init(readOnly bool) error {
	check := func(tx *bolt.Tx) (bool, error) {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return false, fmt.Errorf("%w: %s has no schema version", ErrNotAStore, s.path)
			}
			return true, nil
		}
		v := meta.Get(keySchema)
		if len(v) != 4 {
			return false, fmt.Errorf("%w: %s: schema version missing", ErrCorrupt, s.path)
		}
		switch n := binary.BigEndian.Uint32(v); {
		case n > SchemaVersion:
			return false, fmt.Errorf("%w: %s has schema %d, this build reads %d", ErrNewerSchema, s.path, n, SchemaVersion)
		case n < 1:
			return false, fmt.Errorf("%w: %s: schema version %d", ErrCorrupt, s.path, n)
		}
		for _, b := range [][]byte{bucketEndpoints, bucketSlots, bucketAudit} {
			if tx.Bucket(b) == nil {
				return false, fmt.Errorf("%w: %s: bucket %s missing", ErrCorrupt, s.path, b)
			}
		}
		return false, nil
	}
	var fresh bool
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		fresh, err = check(tx)
		return err
	})
	if err != nil || !fresh {
		return err
	}
	if readOnly {
		return fmt.Errorf("%w: %s is empty", ErrNotAStore, s.path)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		for _, b := range [][]byte{bucketEndpoints, bucketSlots, bucketAudit} {
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return meta.Put(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion))
	})
}

// precheck validates an existing store file's layout (checkLayout) before
// bbolt opens it: bbolt trusts the file, and a damaged free list or meta
// page makes it allocate or map gigabytes, or fault, in Open itself. The
// file is read under a shared lock, so a running daemon (which holds it
// exclusively) makes this wait and then report ErrLocked, never read a
// file in the middle of a write.
func precheck(path string, timeout time.Duration) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // bbolt creates it
	}
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	defer f.Close()
	for deadline := time.Now().Add(timeout); ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("keystore: lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s (is another dkvehicled running?)", ErrLocked, path)
		}
		time.Sleep(50 * time.Millisecond)
	}
	file, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	if len(file) == 0 {
		return nil // bbolt initialises it
	}
	if err := checkLayout(file); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	return nil
}

// checkPages runs bbolt's own consistency check (pages reachable or free,
// no page used twice, keys in order) on the open file, whose layout
// precheck found sound enough for that check to read.
func (s *Store) checkPages() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, r)
		}
	}()
	return s.db.View(func(tx *bolt.Tx) error {
		// Drain every report: the check goroutine uses tx until it is done.
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, err)
			}
		}
		return first
	})
}

// Path returns the file the store lives in.
func (s *Store) Path() string { return s.path }

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	return s.db.View(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx, s: s}) })
}

// Update runs fn in one read-write transaction: everything fn writes lands
// together, or nothing does when fn returns an error.
func (s *Store) Update(fn func(*Tx) error) error {
	var touched map[[20]byte]*Endpoint
	err := s.db.Update(func(btx *bolt.Tx) error {
		t := &Tx{tx: btx, s: s, writable: true}
		if err := fn(t); err != nil {
			return err
		}
		touched = t.touched
		return nil
	})
	if err == nil && len(touched) > 0 {
		s.updateCandidates(touched)
	}
	return err
}

// Stats are counts for status displays.
type Stats struct {
	Endpoints    int   `json:"endpoints"`
	Active       int   `json:"active"`
	Slots        int   `json:"slots"`
	IssuedSlots  int   `json:"issued_slots"`
	AuditEntries int   `json:"audit_entries"`
	FileBytes    int64 `json:"file_bytes"`
}

// Stats counts the store's records.
func (s *Store) Stats() (Stats, error) {
	var st Stats
	err := s.View(func(tx *Tx) error {
		eps, err := tx.Endpoints()
		if err != nil {
			return err
		}
		st.Endpoints = len(eps)
		for _, e := range eps {
			if e.State == StateActive {
				st.Active++
			}
		}
		slots, err := tx.Slots()
		if err != nil {
			return err
		}
		st.Slots = len(slots)
		for _, sl := range slots {
			if sl.State == SlotIssued {
				st.IssuedSlots++
			}
		}
		st.AuditEntries = tx.tx.Bucket(bucketAudit).Stats().KeyN
		st.FileBytes = tx.tx.Size()
		return nil
	})
	return st, err
}
