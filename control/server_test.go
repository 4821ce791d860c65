package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRoundTripKeepsIDsAndOrder(t *testing.T) {
	h := newFakeHandler()
	srv, _ := startServer(t, ServerConfig{}, h)
	c := dialRaw(t, srv.cfg.Path)
	c.send(
		`{"id":7,"verb":"echo","args":{"n":1}}`,
		`{"id":8,"verb":"status"}`,
		`{"id":9,"verb":"echo","args":[2]}`,
	)

	r := c.response()
	var echo echoResult
	if err := json.Unmarshal(r.Result, &echo); err != nil || r.ID != 7 || !r.OK || r.Error != nil {
		t.Fatalf("first response %+v (%v)", r, err)
	}
	if string(echo.Args) != `{"n":1}` {
		t.Errorf("args reached the handler as %s", echo.Args)
	}
	if echo.Peer.UID != uint32(os.Getuid()) || echo.Peer.PID != uint32(os.Getpid()) || echo.Peer.GID != uint32(os.Getgid()) {
		t.Errorf("handler got peer %+v, want uid %d pid %d gid %d", echo.Peer, os.Getuid(), os.Getpid(), os.Getgid())
	}

	r = c.response()
	var st Status
	if err := json.Unmarshal(r.Result, &st); err != nil || r.ID != 8 || !r.OK || st.Version != "test-version" {
		t.Fatalf("second response %+v, status %+v (%v)", r, st, err)
	}
	r = c.response()
	if err := json.Unmarshal(r.Result, &echo); err != nil || r.ID != 9 || string(echo.Args) != `[2]` {
		t.Fatalf("third response %+v (%v)", r, err)
	}
}

func TestClientSequentialCalls(t *testing.T) {
	h := newFakeHandler()
	srv, _ := startServer(t, ServerConfig{}, h)
	c := dialClient(t, srv.cfg.Path)
	for i := range 3 {
		var echo echoResult
		if err := c.Call(ctxT(t), "echo", map[string]int{"i": i}, &echo); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if want := fmt.Sprintf(`{"i":%d}`, i); string(echo.Args) != want {
			t.Errorf("call %d: args %s, want %s", i, echo.Args, want)
		}
	}
	var st Status
	if err := c.Call(ctxT(t), VerbStatus, nil, &st); err != nil || st.Version != "test-version" {
		t.Fatalf("status: %+v, %v", st, err)
	}
	if c.lastID != 4 {
		t.Errorf("client used %d ids, want 4", c.lastID)
	}
}

func TestBadRequestKeepsConnectionUsable(t *testing.T) {
	srv, _ := startServer(t, ServerConfig{}, newFakeHandler())
	c := dialRaw(t, srv.cfg.Path)

	c.send(`{"id":1,"verb":`)
	if r := c.response(); r.OK || r.Error == nil || r.Error.Code != CodeBadRequest {
		t.Fatalf("malformed JSON answered %+v", r)
	}
	c.send(`{"id":3}`)
	if r := c.response(); r.ID != 3 || r.Error == nil || r.Error.Code != CodeBadRequest {
		t.Fatalf("request without a verb answered %+v", r)
	}
	c.send(`{"id":4,"verb":"status"}`)
	if r := c.response(); r.ID != 4 || !r.OK {
		t.Fatalf("good request after bad ones answered %+v", r)
	}
}

func TestUnknownVerbIsTheHandlers(t *testing.T) {
	h := newFakeHandler()
	srv, _ := startServer(t, ServerConfig{}, h)
	err := dialClient(t, srv.cfg.Path).Call(ctxT(t), "no.such.verb", nil, nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeUnknownVerb || e.Message != "no verb no.such.verb" {
		t.Fatalf("unknown verb: %v", err)
	}
	if verbs, _ := h.seen(); len(verbs) != 1 || verbs[0] != "no.such.verb" {
		t.Errorf("handler saw verbs %q", verbs)
	}
}

func TestHandlerErrors(t *testing.T) {
	srv, logs := startServer(t, ServerConfig{}, newFakeHandler())
	c := dialRaw(t, srv.cfg.Path)

	c.send(`{"id":1,"verb":"fail"}`)
	r := c.response()
	if r.ID != 1 || r.OK || r.Error == nil || *r.Error != (Error{Code: CodeUnknownKey, Message: "no key starts with 0badc0de"}) {
		t.Fatalf("*Error not passed through: %+v", r)
	}

	c.send(`{"id":2,"verb":"leak"}`)
	line := c.line()
	if strings.Contains(line, "secret") || strings.Contains(line, "disk full") {
		t.Fatalf("internal detail on the wire: %s", line)
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatal(err)
	}
	if r.ID != 2 || r.Error == nil || *r.Error != (Error{Code: CodeInternal, Message: "internal error (see the daemon's log)"}) {
		t.Fatalf("plain error answered %+v", r)
	}
	log := logs.String()
	for _, want := range []string{leakedDetail, "code=internal", "verb=leak", fmt.Sprintf("peer_uid=%d", os.Getuid()), fmt.Sprintf("peer_pid=%d", os.Getpid())} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestHandlerPanicIsRecovered(t *testing.T) {
	srv, logs := startServer(t, ServerConfig{}, newFakeHandler())
	c := dialRaw(t, srv.cfg.Path)
	c.send(`{"id":1,"verb":"panic"}`)
	line := c.line()
	if strings.Contains(line, "secret") || strings.Contains(line, "handler bug") {
		t.Fatalf("panic value on the wire: %s", line)
	}
	var r Response
	if err := json.Unmarshal([]byte(line), &r); err != nil || r.ID != 1 || r.Error == nil || r.Error.Code != CodeInternal {
		t.Fatalf("panic answered %s (%v)", line, err)
	}
	if log := logs.String(); !strings.Contains(log, "handler panicked") || !strings.Contains(log, leakedDetail) {
		t.Errorf("panic not logged:\n%s", log)
	}
	c.send(`{"id":2,"verb":"status"}`)
	if r := c.response(); r.ID != 2 || !r.OK {
		t.Fatalf("connection unusable after a panic: %+v", r)
	}
}

func TestOversizedLine(t *testing.T) {
	const maxLine = 1024
	srv, logs := startServer(t, ServerConfig{MaxLine: maxLine}, newFakeHandler())

	// A line of exactly MaxLine bytes is fine.
	c := dialRaw(t, srv.cfg.Path)
	req := `{"id":1,"verb":"status"}`
	c.send(req + strings.Repeat(" ", maxLine-len(req)))
	if r := c.response(); r.ID != 1 || !r.OK {
		t.Fatalf("line of MaxLine bytes answered %+v", r)
	}

	// One byte more is too large, and the connection is closed.
	c.send(`{"id":2,"verb":"status"}` + strings.Repeat(" ", maxLine))
	if r := c.response(); r.Error == nil || r.Error.Code != CodeTooLarge {
		t.Fatalf("oversized line answered %+v", r)
	}
	c.closed()
	if !strings.Contains(logs.String(), "code=too_large") {
		t.Errorf("too_large not logged:\n%s", logs)
	}

	// The client surfaces the answer even when the daemon hangs up while
	// the request is still being written.
	cl := dialClient(t, srv.cfg.Path)
	err := cl.Call(ctxT(t), "echo", strings.Repeat("x", 1<<20), nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeTooLarge {
		t.Fatalf("client sending a huge request: %v", err)
	}
	if err := cl.Call(ctxT(t), VerbStatus, nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("call on a connection the daemon closed: %v", err)
	}

	// Others are still served.
	if err := dialClient(t, srv.cfg.Path).Call(ctxT(t), VerbStatus, nil, nil); err != nil {
		t.Fatalf("server stopped serving after an oversized line: %v", err)
	}
}

func TestMaxConnsBusy(t *testing.T) {
	srv, _ := startServer(t, ServerConfig{MaxConns: 2}, newFakeHandler())
	var clients []*Client
	for range 2 {
		c := dialClient(t, srv.cfg.Path)
		if err := c.Call(ctxT(t), VerbStatus, nil, nil); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	err := dialClient(t, srv.cfg.Path).Call(ctxT(t), VerbStatus, nil, nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeBusy {
		t.Fatalf("third connection: %v", err)
	}

	// A slot frees up when a client leaves; the server notices in its own
	// time, so try until it does.
	clients[0].Close()
	ctx := ctxT(t)
	for {
		err := dialClient(t, srv.cfg.Path).Call(ctx, VerbStatus, nil, nil)
		if err == nil {
			break
		}
		if !errors.As(err, &e) || e.Code != CodeBusy {
			t.Fatalf("after a client left: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEventsStreamCountsDropped(t *testing.T) {
	h := newFakeHandler()
	h.newSub = func() *fakeSub {
		// The buffer overflows before the server reads: 2 delivered, 3 lost.
		sub := newFakeSub(2)
		for seq := uint64(1); seq <= 5; seq++ {
			sub.publish(Event{Seq: seq, Type: "tap"})
		}
		return sub
	}
	srv, _ := startServer(t, ServerConfig{}, h)
	c := dialClient(t, srv.cfg.Path)

	type got struct {
		seq, dropped uint64
	}
	lines := make(chan got)
	streamDone := make(chan error, 1)
	ctx := ctxT(t)
	go func() {
		streamDone <- c.Events(ctx, func(ev Event, dropped uint64) error {
			lines <- got{ev.Seq, dropped}
			return nil
		})
	}()
	sub := <-h.subs
	want := func(w got) {
		t.Helper()
		if g := <-lines; g != w {
			t.Fatalf("event %d with %d dropped, want %d with %d", g.seq, g.dropped, w.seq, w.dropped)
		}
	}
	want(got{1, 3})
	want(got{2, 0})
	sub.publish(Event{Seq: 6})
	want(got{6, 0})
	sub.dropped.Add(4) // events 7 to 10 lost
	sub.publish(Event{Seq: 11})
	want(got{11, 4})

	close(sub.ch) // the daemon ends the subscription
	if err := <-streamDone; !errors.Is(err, ErrClosed) {
		t.Fatalf("stream ended with %v", err)
	}
	<-sub.stopped
	if err := c.Call(ctxT(t), VerbStatus, nil, nil); err == nil {
		t.Error("a client that streamed still makes calls")
	}
}

func TestEventsSubscriptionStoppedWhenClientLeaves(t *testing.T) {
	h := newFakeHandler()
	srv, _ := startServer(t, ServerConfig{}, h)
	c := dialRaw(t, srv.cfg.Path)
	c.send(`{"id":5,"verb":"events"}`)
	sub := <-h.subs
	sub.publish(Event{Seq: 1, Type: "tap", Reader: "door"})
	r := c.response()
	if r.ID != 5 || !r.OK || r.Event == nil || r.Event.Reader != "door" || r.Dropped != 0 {
		t.Fatalf("event line %+v", r)
	}
	c.conn.Close()
	<-sub.stopped
}

func TestStalledSubscriberIsDropped(t *testing.T) {
	h := newFakeHandler()
	srv, logs := startServer(t, ServerConfig{WriteTimeout: 100 * time.Millisecond}, h)
	stalled := dialRaw(t, srv.cfg.Path)
	stalled.send(`{"id":1,"verb":"events"}`)
	sub := <-h.subs

	// Events far larger than the socket's buffers; the client reads none.
	big := Event{Type: "tap", Detail: strings.Repeat("x", 64<<10)}
	go func() {
		for {
			select {
			case sub.ch <- big:
			case <-sub.stopped:
				return
			}
		}
	}()

	// Others are served while the server is stuck writing to the stalled one.
	if err := dialClient(t, srv.cfg.Path).Call(ctxT(t), VerbStatus, nil, nil); err != nil {
		t.Fatal(err)
	}
	<-sub.stopped
	stalled.conn.SetReadDeadline(time.Now().Add(safety))
	for { // what the server wrote, then the end of the connection
		if _, err := stalled.r.Discard(64 << 10); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("stalled subscriber's connection is still open")
			}
			break
		}
	}
	if !strings.Contains(logs.String(), "event subscriber dropped") {
		t.Errorf("drop not logged:\n%s", logs)
	}
	if err := dialClient(t, srv.cfg.Path).Call(ctxT(t), VerbStatus, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestIdleConnectionClosed(t *testing.T) {
	srv, _ := startServer(t, ServerConfig{IdleTimeout: 50 * time.Millisecond}, newFakeHandler())
	c := dialRaw(t, srv.cfg.Path)
	c.send(`{"id":1,"verb":"status"}`)
	c.response()
	c.closed()
}

func TestSocketFileModeAndOwner(t *testing.T) {
	srv, _ := startServer(t, ServerConfig{UID: -1, GID: -1}, newFakeHandler())
	fi, err := os.Stat(srv.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket file mode %v, want socket 0660", fi.Mode())
	}

	srv, _ = startServer(t, ServerConfig{Mode: 0o600, UID: 65534, GID: 65533}, newFakeHandler())
	fi, err = os.Stat(srv.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o600 || st.Uid != 65534 || st.Gid != 65533 {
		t.Errorf("socket file %v owned by %d:%d, want 0600 owned by 65534:65533", fi.Mode(), st.Uid, st.Gid)
	}
}

func TestStaleSocketReplacedLiveOneRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")

	// A daemon that died left its socket file behind.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket file: %v", err)
	}
	srv, _ := startServer(t, ServerConfig{Path: path}, newFakeHandler())
	if err := dialClient(t, path).Call(ctxT(t), VerbStatus, nil, nil); err != nil {
		t.Fatalf("server on a replaced stale socket: %v", err)
	}

	// A second daemon must not steal the socket of a live one.
	_, err = Listen(ServerConfig{Path: path}, newFakeHandler())
	if err == nil || !strings.Contains(err.Error(), "another dkvehicled is listening on "+path) {
		t.Fatalf("Listen on a live socket: %v", err)
	}
	if err := dialClient(t, srv.cfg.Path).Call(ctxT(t), VerbStatus, nil, nil); err != nil {
		t.Fatalf("live server after a refused Listen: %v", err)
	}

	// Nor remove a file that is not a socket.
	other := filepath.Join(t.TempDir(), "not-a-socket")
	if err := os.WriteFile(other, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(ServerConfig{Path: other}, newFakeHandler()); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Fatalf("Listen over a regular file: %v", err)
	}
	if b, err := os.ReadFile(other); err != nil || string(b) != "keep me" {
		t.Fatalf("regular file changed: %q, %v", b, err)
	}
}

func TestCloseWithOpenConnections(t *testing.T) {
	h := newFakeHandler()
	srv, err := Listen(ServerConfig{Path: filepath.Join(t.TempDir(), "control.sock")}, h)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(t.Context()) }()

	idle := dialRaw(t, srv.cfg.Path)
	idle.send(`{"id":1,"verb":"status"}`)
	idle.response()

	ctx := ctxT(t)
	blocked := make(chan error, 1)
	blocker := dialClient(t, srv.cfg.Path)
	go func() { blocked <- blocker.Call(ctx, "block", nil, nil) }()
	<-h.blocked

	streaming := make(chan error, 1)
	streamer := dialClient(t, srv.cfg.Path)
	go func() {
		streaming <- streamer.Events(ctx, func(Event, uint64) error { return nil })
	}()
	sub := <-h.subs

	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve after Close: %v", err)
	}
	if err := <-blocked; err == nil {
		t.Error("call interrupted by Close succeeded")
	}
	if err := <-streaming; !errors.Is(err, ErrClosed) {
		t.Errorf("stream interrupted by Close: %v", err)
	}
	<-sub.stopped
	idle.closed()
	if _, err := os.Stat(srv.cfg.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after Close: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
