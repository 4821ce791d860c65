package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeHandler answers a few test verbs and records what it was asked.
type fakeHandler struct {
	mu    sync.Mutex
	verbs []string
	peers []Peer

	blocked chan struct{}   // a "block" request has started
	subs    chan *fakeSub   // every subscription opened, in order
	newSub  func() *fakeSub // builds subscriptions (default: buffer of 16)
}

func newFakeHandler() *fakeHandler {
	return &fakeHandler{blocked: make(chan struct{}, 16), subs: make(chan *fakeSub, 16)}
}

// echoResult is the "echo" verb's answer.
type echoResult struct {
	Peer Peer            `json:"peer"`
	Args json.RawMessage `json:"args"`
}

const leakedDetail = "disk full at /secret/detail-42"

func (h *fakeHandler) Handle(ctx context.Context, peer Peer, verb string, args json.RawMessage) (any, error) {
	h.mu.Lock()
	h.verbs = append(h.verbs, verb)
	h.peers = append(h.peers, peer)
	h.mu.Unlock()
	switch verb {
	case "echo":
		return echoResult{Peer: peer, Args: args}, nil
	case VerbStatus:
		return Status{Version: "test-version"}, nil
	case "fail":
		return nil, Errorf(CodeUnknownKey, "no key starts with 0badc0de")
	case "leak":
		return nil, errors.New(leakedDetail)
	case "panic":
		panic("handler bug: " + leakedDetail)
	case "block":
		h.blocked <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, Errorf(CodeUnknownVerb, "no verb "+verb)
}

func (h *fakeHandler) Subscribe() Subscription {
	sub := newFakeSub(16)
	if h.newSub != nil {
		sub = h.newSub()
	}
	h.subs <- sub
	return sub
}

func (h *fakeHandler) seen() ([]string, []Peer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.verbs...), append([]Peer(nil), h.peers...)
}

// fakeSub is a subscription with a bounded buffer that drops and counts
// events when full, like the daemon's.
type fakeSub struct {
	ch       chan Event
	dropped  atomic.Uint64
	stopped  chan struct{}
	stopOnce sync.Once
}

func newFakeSub(buffer int) *fakeSub {
	return &fakeSub{ch: make(chan Event, buffer), stopped: make(chan struct{})}
}

func (s *fakeSub) Events() <-chan Event { return s.ch }
func (s *fakeSub) Dropped() uint64      { return s.dropped.Load() }
func (s *fakeSub) Stop()                { s.stopOnce.Do(func() { close(s.stopped) }) }

// publish delivers ev without ever blocking.
func (s *fakeSub) publish(ev Event) {
	select {
	case s.ch <- ev:
	default:
		s.dropped.Add(1)
	}
}

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer listens on a fresh socket (unless cfg.Path is set) and serves
// h until the test ends. Its log goes to the returned buffer.
func startServer(t *testing.T, cfg ServerConfig, h Handler) (*Server, *syncBuffer) {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "control.sock")
	}
	logs := new(syncBuffer)
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := Listen(cfg, h)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, logs
}

// rawConn is a test client speaking the wire format by hand.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// safety bounds every read of a test so a broken server fails the test
// instead of hanging it; it is not a timing assertion.
const safety = 20 * time.Second

func dialRaw(t *testing.T, path string) *rawConn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, conn: c, r: bufio.NewReader(c)}
}

func (c *rawConn) send(lines ...string) {
	c.t.Helper()
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	if _, err := c.conn.Write(b.Bytes()); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// line reads one raw response line.
func (c *rawConn) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(safety))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read response: %v (got %q)", err, l)
	}
	return l
}

func (c *rawConn) response() Response {
	c.t.Helper()
	l := c.line()
	var resp Response
	if err := json.Unmarshal([]byte(l), &resp); err != nil {
		c.t.Fatalf("response %q: %v", l, err)
	}
	return resp
}

// closed asserts that the server has closed the connection.
func (c *rawConn) closed() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(safety))
	if l, err := c.r.ReadString('\n'); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("connection still open: read %q, %v", l, err)
	}
}

func dialClient(t *testing.T, path string) *Client {
	t.Helper()
	c, err := Dial(path)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), safety)
	t.Cleanup(cancel)
	return ctx
}
