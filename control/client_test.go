package control

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"
)

func TestDialNoDaemon(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "control.sock")
	_, err := Dial(missing)
	if !errors.Is(err, ErrNotRunning) || err.Error() != "dkvehicled is not running (no socket at "+missing+")" {
		t.Errorf("Dial without a socket file: %v", err)
	}

	stale := filepath.Join(t.TempDir(), "control.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	_, err = Dial(stale)
	if !errors.Is(err, ErrNotRunning) || err.Error() != "dkvehicled is not running (no socket at "+stale+")" {
		t.Errorf("Dial on a stale socket file: %v", err)
	}
}

func TestCallCanceled(t *testing.T) {
	h := newFakeHandler()
	srv, _ := startServer(t, ServerConfig{}, h)
	c := dialClient(t, srv.cfg.Path)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Call(ctx, "block", nil, nil) }()
	<-h.blocked
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled call: %v", err)
	}
	// The answer may still come: the connection is not reused.
	if err := c.Call(t.Context(), VerbStatus, nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("call after an abandoned one: %v", err)
	}
	if err := dialClient(t, srv.cfg.Path).Call(t.Context(), VerbStatus, nil, nil); err != nil {
		t.Errorf("new client: %v", err)
	}
}

func TestCallDeadline(t *testing.T) {
	h := newFakeHandler()
	srv, _ := startServer(t, ServerConfig{}, h)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := dialClient(t, srv.cfg.Path).Call(ctx, "block", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call past its deadline: %v", err)
	}
}
