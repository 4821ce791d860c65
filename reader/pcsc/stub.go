//go:build !pcsc

package pcsc

import "github.com/dkvehicled/dkvehicled/reader"

// Manager would hold the PC/SC context; this build has no PC/SC support.
type Manager struct{}

// NewManager returns ErrNotBuilt: this build has no PC/SC support.
func NewManager() (*Manager, error) { return nil, ErrNotBuilt }

// Open returns ErrNotBuilt.
func (*Manager) Open(Options) (reader.Reader, error) { return nil, ErrNotBuilt }

// ListReaders returns ErrNotBuilt.
func (*Manager) ListReaders() ([]string, error) { return nil, ErrNotBuilt }

// Close does nothing.
func (*Manager) Close() error { return nil }
