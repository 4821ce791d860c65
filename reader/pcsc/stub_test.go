//go:build !pcsc

package pcsc

import (
	"errors"
	"strings"
	"testing"
)

func TestStubSaysHowToRebuild(t *testing.T) {
	_, err := NewManager()
	if !errors.Is(err, ErrNotBuilt) || !strings.Contains(err.Error(), "-tags pcsc") {
		t.Fatalf("NewManager: %v", err)
	}
	if _, err := (*Manager)(nil).Open(Options{Reader: "*"}); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("Open: %v", err)
	}
}
