package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
)

// The control socket under abuse (issue 7): against the running daemon, a
// thousand clients at once, slow clients, oversized and malformed requests,
// clients that never read; meanwhile taps through an already-connected client
// keep succeeding, and afterwards the daemon answers, its memory is bounded
// and its connection count is back to what it was.
//
// The benchmark of the same file gives tap latency with and without the
// abuse (not run by CI):
//
//	go test -run '^$' -bench TapUnderAbuse -count 5 ./cmd/dkvehicled/

// The abuse of TestControlSocketAbuse.
const (
	abuseFlood       = 1000 // clients connecting at once, each sending a request
	abuseHalfLine    = 16   // clients that send half a line and stall
	abuseSilent      = 16   // clients that connect and never send
	abuseDeafStream  = 4    // clients that open the event stream and never read it
	abuseDeafCallers = 2    // clients that send thousands of requests and never read an answer
	abuseOversize    = 12   // lines of MaxLine+1 KiB
	abuseHuge        = 4    // lines of 4 MiB
	abuseEndless     = 4    // 2 MiB without a newline
	abuseMalformed   = 16   // clients sending every kind of bad request
)

// The growth of the daemon's resident set the abuse may cause, over its
// resident set before (KiB), for the daemon as it ships and for the
// race-enabled build the tests normally run.
//
// As it ships (go test -run Abuse -bench NONE builds it so), measured on the
// 2-core development VM: 16 to 20 MiB before, at most 1 MiB more during the
// abuse and after it, and still flat after four floods of 1000 clients in a
// row. The daemon's own buffers are bounded: MaxConns (128) connections
// served, each reading at most MaxLine (64 KiB), so 8 MiB of request buffers
// at worst; an event subscriber holds at most 256 events and its socket
// buffer. 64 MiB is that worst case eight times over, and still catches
// anything that grows with the number of clients (a thousand 64 KiB buffers
// would be 62 MiB).
//
// With the race detector: 53 to 55 MiB before, 25 to 35 MiB more after the
// same abuse, because the race runtime keeps state for every goroutine it has
// seen (each connection is one) and shadow memory it never returns: three
// more floods of 1000 clients add 8 to 16 MiB each (68 MiB in all), where the
// shipped daemon stays flat. 256 MiB is about four times the largest growth
// measured.
const (
	abuseMemBound     = 64 << 10
	abuseMemBoundRace = 256 << 10
)

// abuseDial connects to the socket, retrying while the listen backlog is
// full (EAGAIN), as a client would.
func abuseDial(path string) (net.Conn, int, error) {
	for retries := 0; ; retries++ {
		c, err := net.Dial("unix", path)
		if err == nil || !errors.Is(err, syscall.EAGAIN) || retries == 200 {
			return c, retries, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// abuseRead reads one answer line within limit.
func abuseRead(conn net.Conn, r *bufio.Reader, limit time.Duration) (control.Response, error) {
	conn.SetReadDeadline(time.Now().Add(limit))
	line, err := r.ReadBytes('\n')
	if err != nil {
		return control.Response{}, err
	}
	var resp control.Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return resp, fmt.Errorf("an answer that is not JSON (%q): %w", line[:min(len(line), 100)], err)
	}
	return resp, nil
}

// procMem reads a process's resident set and its peak, in KiB.
func procMem(pid int) (rss, hwm int, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss, _ = strconv.Atoi(strings.Fields(v)[0])
		}
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			hwm, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("no VmRSS or VmHWM in /proc/%d/status", pid)
	}
	return rss, hwm, nil
}

// procCPU reads a process's CPU time (user and system).
func procCPU(tb testing.TB, pid int) time.Duration {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		tb.Fatal(err)
	}
	// The fields after the command name, which may hold spaces.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ = 100
}

// procFDs counts a process's open file descriptors (its connections among
// them).
func procFDs(pid int) int {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// floodResult is how a flood of clients was answered.
type floodResult struct {
	served, busy int
	other        []string // anything else: each is a failure
	dialRetries  int
}

// abuseFloodOnce connects n clients at once; each sends a status request
// and reads one answer within limit. Every client keeps its connection
// until all have their answer, so the daemon holds as many as it serves.
func abuseFloodOnce(path string, n int, limit time.Duration) floodResult {
	var (
		mu  sync.Mutex
		res floodResult
	)
	answered := sync.WaitGroup{}
	answered.Add(n)
	release := make(chan struct{})
	var done sync.WaitGroup
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			outcome, retries := func() (string, int) {
				defer answered.Done()
				conn, retries, err := abuseDial(path)
				if err != nil {
					return "dial: " + err.Error(), retries
				}
				go func() { <-release; conn.Close() }()
				conn.SetWriteDeadline(time.Now().Add(limit))
				_, werr := fmt.Fprintf(conn, `{"id":%d,"verb":"status"}`+"\n", i+1)
				resp, err := abuseRead(conn, bufio.NewReader(conn), limit)
				switch {
				case err == nil && resp.OK && resp.ID == uint64(i+1):
					return "served", retries
				case err == nil && resp.ID == 0 && resp.Error != nil && resp.Error.Code == control.CodeBusy && strings.Contains(resp.Error.Message, "too many connections"):
					return "busy", retries
				case err == nil:
					return fmt.Sprintf("unexpected answer %+v", resp), retries
				case errors.Is(err, os.ErrDeadlineExceeded):
					return fmt.Sprintf("no answer within %s (write: %v)", limit, werr), retries
				default:
					return fmt.Sprintf("no answer: %v (write: %v)", err, werr), retries
				}
			}()
			mu.Lock()
			defer mu.Unlock()
			res.dialRetries += retries
			switch outcome {
			case "served":
				res.served++
			case "busy":
				res.busy++
			default:
				res.other = append(res.other, outcome)
			}
		}()
	}
	answered.Wait()
	close(release)
	done.Wait()
	return res
}

// abuseHold opens n connections that stall: half a request line, or
// nothing at all.
func abuseHold(t testing.TB, path string, n int, half bool) []net.Conn {
	t.Helper()
	var out []net.Conn
	for range n {
		conn, _, err := abuseDial(path)
		if err != nil {
			t.Fatal(err)
		}
		if half {
			if _, err := conn.Write([]byte(`{"id":1,"verb":"sta`)); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, conn)
	}
	return out
}

// abuseDeafStreams opens n event streams that are never read.
func abuseDeafStreams(path string, n int) ([]net.Conn, error) {
	var out []net.Conn
	for range n {
		conn, _, err := abuseDial(path)
		if err == nil {
			out = append(out, conn)
			_, err = conn.Write([]byte(`{"id":1,"verb":"events"}` + "\n"))
		}
		if err != nil {
			for _, c := range out {
				c.Close()
			}
			return nil, err
		}
	}
	return out, nil
}

// abuseDeafCaller sends requests, thousands of them, and never reads an
// answer; the returned channel gets the write error once the daemon has
// hung up (or the limit passed).
func abuseDeafCaller(path string, limit time.Duration) (net.Conn, <-chan error, error) {
	conn, _, err := abuseDial(path)
	if err != nil {
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() {
		line := `{"id":1,"verb":"status"}` + "\n"
		burst := []byte(strings.Repeat(line, 20000))
		conn.SetWriteDeadline(time.Now().Add(limit))
		var err error
		for err == nil {
			_, err = conn.Write(burst)
		}
		done <- err
	}()
	return conn, done, nil
}

// abuseBigLine sends one line of size bytes (a status request padded with a
// long argument; no newline when newline is false) and returns the
// daemon's answer. A daemon that hangs up while the rest of a huge line is
// still being written may reset the connection before its answer is read:
// that is reported as closed.
func abuseBigLine(path string, size int, newline bool, limit time.Duration) (code string, err error) {
	conn, _, err := abuseDial(path)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	head, tail := `{"id":1,"verb":"status","args":"`, `"}`
	pad := max(size-len(head)-len(tail), 0)
	line := head + strings.Repeat("A", pad) + tail
	if !newline {
		line = strings.Repeat("A", size)
	} else {
		line += "\n"
	}
	go func() {
		conn.SetWriteDeadline(time.Now().Add(limit))
		conn.Write([]byte(line))
	}()
	resp, err := abuseRead(conn, bufio.NewReader(conn), limit)
	switch {
	case err == nil && resp.OK:
		return "ok", nil
	case err == nil && resp.Error != nil:
		return resp.Error.Code, nil
	case err == nil:
		return "", fmt.Errorf("answer without a result or an error: %+v", resp)
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return "closed", nil
	}
	return "", err
}

// abuseBadLines are requests the daemon must refuse one by one, with the
// code it must answer, keeping the connection.
var abuseBadLines = []struct{ line, code string }{
	{`{"id":1,"verb":`, control.CodeBadRequest},
	{`not json`, control.CodeBadRequest},
	{"", control.CodeBadRequest},
	{"   ", control.CodeBadRequest},
	{"\x00\x01\x02\xff\xfe", control.CodeBadRequest},
	{`null`, control.CodeBadRequest},
	{`[1,2,3]`, control.CodeBadRequest},
	{`"status"`, control.CodeBadRequest},
	{`{"id":1,"verb":"status"}}`, control.CodeBadRequest},
	{`{"id":-1,"verb":"status"}`, control.CodeBadRequest},
	{`{"id":1e40,"verb":"status"}`, control.CodeBadRequest},
	{`{"id":"1","verb":"status"}`, control.CodeBadRequest},
	{`{"id":1,"verb":42}`, control.CodeBadRequest},
	{`{"id":1,"verb":["status"]}`, control.CodeBadRequest},
	{`{"id":1}`, control.CodeBadRequest},
	{`{"id":1,"verb":"status","args":` + strings.Repeat("[", 20000), control.CodeBadRequest},
	{`{"id":2,"verb":"launch.missiles"}`, control.CodeUnknownVerb},
	{`{"id":2,"verb":"pairing.nope"}`, control.CodeUnknownVerb},
	{`{"id":2,"verb":"sim.nope"}`, control.CodeUnknownVerb},
	{"{\"id\":2,\"verb\":\"\xff\xfe\"}", control.CodeUnknownVerb},
	{`{"id":2,"verb":"STATUS"}`, control.CodeUnknownVerb},
	{`{"id":3,"verb":"keys.show","args":{"key_id":12345678}}`, control.CodeBadRequest},
	{`{"id":3,"verb":"keys.show","args":["x"]}`, control.CodeBadRequest},
	{`{"id":3,"verb":"keys.show","args":"0123456789"}`, control.CodeBadRequest},
	{`{"id":3,"verb":"keys.revoke","args":{"key_id":null,"extra":1}}`, control.CodeBadRequest},
	{`{"id":3,"verb":"audit","args":{"limit":"all"}}`, control.CodeBadRequest},
	{`{"id":3,"verb":"audit","args":{"limit":1e99}}`, control.CodeBadRequest},
	{`{"id":3,"verb":"vehicle.digital_key","args":{"enabled":"off"}}`, control.CodeBadRequest},
	{`{"id":3,"verb":"reader.enable","args":{"reader":"door","enabled":0}}`, control.CodeBadRequest},
	{`{"id":3,"verb":"sim.tap","args":{"phone":["owner"],"reader":1}}`, control.CodeBadRequest},
	{`{"id":3,"verb":"sim.tap","args":{"phone":"owner","reader":"door","drop_at":"1"}}`, control.CodeBadRequest},
	{`{"id":3,"verb":"pairing.start","args":{"timeout_s":-1e309}}`, control.CodeBadRequest},
	{`{"id":3,"verb":"keys.set_window","args":{"key_id":"00000000","not_before":5}}`, control.CodeBadRequest},
}

// errAbuseBusy: the daemon refused the connection over MaxConns.
var errAbuseBusy = errors.New("told busy")

// abuseBadClient sends every bad line on one connection, checks each
// answer, and ends with a status request that must succeed. It returns
// errAbuseBusy when the daemon refuses the connection.
func abuseBadClient(path string, limit time.Duration) error {
	conn, _, err := abuseDial(path)
	if err != nil {
		return err
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	for i, b := range abuseBadLines {
		// A daemon that refuses the connection may have hung up before
		// the first line is written: its answer is still there to read.
		conn.SetWriteDeadline(time.Now().Add(limit))
		_, werr := conn.Write([]byte(b.line + "\n"))
		resp, err := abuseRead(conn, r, limit)
		if i == 0 && err == nil && resp.ID == 0 && resp.Error != nil && resp.Error.Code == control.CodeBusy {
			return errAbuseBusy
		}
		if werr != nil {
			return fmt.Errorf("%q: %w", b.line[:min(len(b.line), 60)], werr)
		}
		if err != nil {
			return fmt.Errorf("%q: %w", b.line[:min(len(b.line), 60)], err)
		}
		if resp.OK || resp.Error == nil || resp.Error.Code != b.code {
			return fmt.Errorf("%q: answered %+v, want %s", b.line[:min(len(b.line), 60)], resp, b.code)
		}
	}
	if _, err := conn.Write([]byte(`{"id":77,"verb":"status"}` + "\n")); err != nil {
		return err
	}
	resp, err := abuseRead(conn, r, limit)
	if err != nil {
		return fmt.Errorf("status after the bad requests: %w", err)
	}
	if !resp.OK || resp.ID != 77 {
		return fmt.Errorf("status after the bad requests: %+v", resp)
	}
	return nil
}

// abuseTap taps the owner's phone at the door: the fast path, allowed, the
// lock toggled.
func abuseTap(c *control.Client, locked *bool) (ev control.Event, start time.Time, rtt time.Duration, err error) {
	want := "lock"
	if *locked {
		want = "unlock"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start = time.Now()
	if err := c.Call(ctx, control.VerbSimTap, control.SimPlaceArgs{Phone: "owner", Reader: "door"}, &ev); err != nil {
		return ev, start, 0, err
	}
	rtt = time.Since(start)
	if ev.Result != "allowed" || ev.Path != "fast" || ev.Action != want || !ev.Actuated {
		return ev, start, rtt, fmt.Errorf("tap: %s %s path %s reason %q actuated %v (%s); want allowed %s on the fast path",
			ev.Result, ev.Action, ev.Path, ev.Reason, ev.Actuated, ev.Detail, want)
	}
	*locked = !*locked
	return ev, start, rtt, nil
}

// latencies are the times of a series of taps.
type latencies struct {
	total, rtt []time.Duration
	slowest    control.Event // the tap of the longest transaction
	// From the request to the event's publication, less the transaction;
	// from the publication to the answer (the daemon's clock is this
	// process's).
	before, after []time.Duration
}

func (l *latencies) add(ev control.Event, start time.Time, rtt time.Duration) {
	total := time.Duration(ev.Total)
	if len(l.total) == 0 || total > slices.Max(l.total) {
		l.slowest = ev
	}
	l.total = append(l.total, total)
	l.rtt = append(l.rtt, rtt)
	l.before = append(l.before, ev.Time.Sub(start)-total)
	l.after = append(l.after, start.Add(rtt).Sub(ev.Time))
}

// phases describes the slowest tap's phases.
func (l *latencies) phases() string {
	var b strings.Builder
	for _, p := range l.slowest.Phases {
		fmt.Fprintf(&b, " %s %v", p.Name, time.Duration(p.Time).Round(time.Microsecond))
	}
	return strings.TrimSpace(b.String())
}

func abuseMedian(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func (l *latencies) String() string {
	return fmt.Sprintf("%d taps: transaction median %v max %v, round trip median %v max %v (median %v before the transaction and its event, %v from the event to the answer)",
		len(l.total), abuseMedian(l.total), slices.Max(l.total), abuseMedian(l.rtt), slices.Max(l.rtt), abuseMedian(l.before), abuseMedian(l.after))
}

// abuseOwner pairs the owner's phone and gives it the fast path: the door
// is left locked.
func abuseOwner(t testing.TB, c *control.Client) control.Key {
	t.Helper()
	owner := setupOwner(t, c)
	expect(t, call[control.Event](t, c, control.VerbSimTap, control.SimPlaceArgs{Phone: "owner", Reader: "door"}), "allowed", "unlock", "standard", "")
	expect(t, call[control.Event](t, c, control.VerbSimTap, control.SimPlaceArgs{Phone: "owner", Reader: "door"}), "allowed", "lock", "fast", "")
	return owner
}

// abuseChurn renames the owner's key until stop, one event each; it
// returns how many it made.
func abuseChurn(c *control.Client, keyID string, stop <-chan struct{}) (int, error) {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return n, nil
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := c.Call(ctx, control.VerbKeysRename, control.RenameArgs{KeyID: keyID, Name: fmt.Sprintf("owner %d", n)}, nil)
		cancel()
		if err != nil {
			return n, fmt.Errorf("rename %d: %w", n, err)
		}
	}
}

// TestControlSocketAbuse: see the top of the file.
func TestControlSocketAbuse(t *testing.T) {
	dir := newDir(t, nil)
	in := start(t, dir)
	pid := in.cmd.Process.Pid
	path := in.socket()
	c := in.client()
	owner := abuseOwner(t, c)
	locked := true
	doorTaps := 2

	// The clients connected before the abuse: taps, an event generator,
	// a well-behaved event stream.
	tc, ec, sc := in.client(), in.client(), in.client()
	var (
		evMu       sync.Mutex
		evCount    int
		evLast     uint64
		evDropped  uint64
		evDisorder int
	)
	streamCtx, stopStream := context.WithCancel(context.Background())
	defer stopStream()
	go sc.Events(streamCtx, func(ev control.Event, dropped uint64) error {
		evMu.Lock()
		defer evMu.Unlock()
		if ev.Seq <= evLast {
			evDisorder++
		}
		evCount, evLast, evDropped = evCount+1, ev.Seq, evDropped+dropped
		return nil
	})
	streamed := func() (int, uint64) {
		evMu.Lock()
		defer evMu.Unlock()
		return evCount, evLast
	}
	// The stream is open once it delivers an event.
	for i := 0; ; i++ {
		if n, _ := streamed(); n > 0 {
			break
		}
		if i == 100 {
			t.Fatal("the event stream delivers nothing")
		}
		call[control.Key](t, ec, control.VerbKeysRename, control.RenameArgs{KeyID: owner.KeyID, Name: "owner"})
		time.Sleep(20 * time.Millisecond)
	}

	var quiet latencies
	for range 30 {
		ev, t0, rtt, err := abuseTap(tc, &locked)
		if err != nil {
			t.Fatal(err)
		}
		quiet.add(ev, t0, rtt)
		doorTaps++
	}
	rss0, hwm0, err := procMem(pid)
	if err != nil {
		t.Fatal(err)
	}
	fds0 := procFDs(pid)
	log0 := len(in.log())
	t.Logf("before the abuse: VmRSS %d KiB, VmHWM %d KiB, %d open files", rss0, hwm0, fds0)

	// Throughout the abuse: memory sampled, taps, events.
	stop := make(chan struct{})
	var bg sync.WaitGroup
	stopBackground := sync.OnceFunc(func() { close(stop); bg.Wait() })
	defer stopBackground() // on a failure half-way
	var rssMax atomic.Int64
	bg.Go(func() {
		for {
			if rss, _, err := procMem(pid); err == nil && int64(rss) > rssMax.Load() {
				rssMax.Store(int64(rss))
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	var abused latencies
	var bgFailed atomic.Bool // a tap or the event generator failed
	var tapErr, churnErr error
	var churned int
	bg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			ev, t0, rtt, err := abuseTap(tc, &locked)
			if err != nil {
				tapErr = err
				bgFailed.Store(true)
				return
			}
			abused.add(ev, t0, rtt)
		}
	})
	bg.Go(func() {
		churned, churnErr = abuseChurn(ec, owner.KeyID, stop)
		if churnErr != nil {
			bgFailed.Store(true)
		}
	})

	const limit = 60 * time.Second // only a hung daemon takes this long
	// Phase 1: clients that stall, that never read, that send too much
	// or nonsense.
	held := abuseHold(t, path, abuseHalfLine, true)
	held = append(held, abuseHold(t, path, abuseSilent, false)...)
	deaf, err := abuseDeafStreams(path, abuseDeafStream)
	if err != nil {
		t.Fatal(err)
	}
	var deafCallers []net.Conn
	var deafDone []<-chan error
	for range abuseDeafCallers {
		conn, done, err := abuseDeafCaller(path, limit)
		if err != nil {
			t.Fatal(err)
		}
		deafCallers, deafDone = append(deafCallers, conn), append(deafDone, done)
	}
	var p1 sync.WaitGroup
	var p1Mu sync.Mutex
	var p1Errs []string
	bigCodes := map[string]int{}
	fail := func(format string, args ...any) {
		p1Mu.Lock()
		defer p1Mu.Unlock()
		p1Errs = append(p1Errs, fmt.Sprintf(format, args...))
	}
	big := func(what string, size int, newline bool, want ...string) {
		p1.Go(func() {
			code, err := abuseBigLine(path, size, newline, limit)
			p1Mu.Lock()
			bigCodes[what+": "+code]++
			p1Mu.Unlock()
			if err != nil {
				fail("%s: %v", what, err)
			} else if !slices.Contains(want, code) {
				fail("%s: answered %q, want %v", what, code, want)
			}
		})
	}
	// The limit itself: a line of MaxLine bytes is served, one byte more
	// is refused.
	big("a line of exactly MaxLine bytes", control.DefaultMaxLine, true, "ok")
	big("a line of MaxLine+1 bytes", control.DefaultMaxLine+1, true, control.CodeTooLarge)
	for range abuseOversize {
		big("a line of MaxLine+1 KiB", control.DefaultMaxLine+1024, true, control.CodeTooLarge)
	}
	for range abuseHuge {
		big("a line of 4 MiB", 4<<20, true, control.CodeTooLarge, "closed")
	}
	for range abuseEndless {
		big("2 MiB without a newline", 2<<20, false, control.CodeTooLarge, "closed")
	}
	for range abuseMalformed {
		p1.Go(func() {
			if err := abuseBadClient(path, limit); err != nil {
				fail("bad requests: %v", err)
			}
		})
	}
	p1.Wait()
	for _, e := range p1Errs {
		t.Error(e)
	}
	t.Logf("oversized lines answered: %v", bigCodes)

	// Phase 2: a thousand clients at once, with all of the above still
	// connected.
	logAt, floodStart := len(in.log()), time.Now()
	fl := abuseFloodOnce(path, abuseFlood, limit)
	floodTime := time.Since(floodStart)
	t.Logf("%d clients at once: %d served, %d told busy, %d other; %d dial retries (listen backlog full)",
		abuseFlood, fl.served, fl.busy, len(fl.other), fl.dialRetries)
	for i, o := range fl.other {
		if i == 10 {
			t.Errorf("... and %d more", len(fl.other)-10)
			break
		}
		t.Errorf("flood client: %s", o)
	}
	// At most MaxConns are served, minus what the taps, the events and
	// the stalled clients hold; everyone else is told busy.
	if fl.served < 1 || fl.served > control.DefaultMaxConns-4-len(held) || fl.served+fl.busy != abuseFlood {
		t.Errorf("flood: %d served and %d busy of %d (at most %d can be served)", fl.served, fl.busy, abuseFlood, control.DefaultMaxConns-4-len(held))
	}

	// The deaf event streams are dropped by the daemon (WriteTimeout)
	// once their socket buffers are full; the events keep coming until
	// then.
	dropLine := "control: event subscriber dropped: it stopped reading"
	for deadline := time.Now().Add(limit); strings.Count(in.log(), dropLine) < abuseDeafStream; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) || bgFailed.Load() {
			t.Errorf("%d of %d deaf event streams dropped", strings.Count(in.log(), dropLine), abuseDeafStream)
			break
		}
	}
	// Refusals are logged, but not one line each: a client retrying in a
	// loop must not flood the journal (whose rate limit would then drop
	// the daemon's other lines, tap events included). At most one line a
	// second, each with the number of connections refused since the
	// previous one, so that they add up to every refusal.
	var busyLines, busyLogged int
	var busyTime time.Duration
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		busyTime = time.Since(floodStart)
		busyLines, busyLogged = 0, 0
		for _, line := range strings.Split(in.log()[logAt:], "\n") {
			if strings.Contains(line, `msg="control: too many connections"`) {
				busyLines++
				if _, v, ok := strings.Cut(line, " refused="); ok {
					n, _ := strconv.Atoi(strings.Fields(v)[0])
					busyLogged += n
				}
			}
		}
		if busyLogged >= fl.busy || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("the flood took %v; %v after it began, %d log lines about refused connections, counting %d refusals",
		floodTime, busyTime.Round(time.Millisecond), busyLines, busyLogged)
	if busyLogged != fl.busy || busyLines > 2+int(busyTime/time.Second) {
		t.Errorf("%d connections refused: the log has %d lines about them in %v, counting %d", fl.busy, busyLines, busyTime, busyLogged)
	}

	stopBackground()
	if tapErr != nil {
		t.Errorf("a tap during the abuse: %v", tapErr)
	}
	if churnErr != nil {
		t.Errorf("the event generator during the abuse: %v", churnErr)
	}
	doorTaps += len(abused.total)
	rss1, hwm1, err := procMem(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("during the abuse: VmRSS max %d KiB (sampled every 10 ms), %d KiB at its end, VmHWM %d KiB; %s; %d key events generated",
		rssMax.Load(), rss1, hwm1, &abused, churned)
	if len(abused.total) < 5 {
		t.Errorf("only %d taps during the abuse", len(abused.total))
	}

	// The daemon hung up on the clients that never read.
	for i, conn := range deaf {
		conn.SetReadDeadline(time.Now().Add(limit))
		if n, err := io.Copy(io.Discard, conn); err != nil {
			t.Errorf("deaf event stream %d: not closed by the daemon: %v (%d bytes)", i, err, n)
		}
		conn.Close()
	}
	for i, done := range deafDone {
		if err := <-done; errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("deaf caller %d: the daemon still reads its requests", i)
		}
		deafCallers[i].SetReadDeadline(time.Now().Add(limit))
		if _, err := io.Copy(io.Discard, deafCallers[i]); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("deaf caller %d: not closed by the daemon: %v", i, err)
		}
		deafCallers[i].Close()
	}
	for _, conn := range held {
		conn.Close()
	}

	// Afterwards: the connections are gone, memory is back within bounds,
	// and the daemon serves as many clients as before.
	fds2 := procFDs(pid)
	for deadline := time.Now().Add(limit); fds2 > fds0; fds2 = procFDs(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon holds %d open files, %d before the abuse", fds2, fds0)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := call[control.Status](t, c, control.VerbStatus, nil)
	var after latencies
	for range 10 {
		ev, t0, rtt, err := abuseTap(tc, &locked)
		if err != nil {
			t.Fatal(err)
		}
		after.add(ev, t0, rtt)
		doorTaps++
	}
	// Exactly MaxConns: the four clients of the test, and as many new ones
	// as remain; the next is told busy.
	var extra []net.Conn
	for i := range control.DefaultMaxConns - 4 {
		conn, _, err := abuseDial(path)
		if err != nil {
			t.Fatal(err)
		}
		extra = append(extra, conn)
		fmt.Fprintf(conn, `{"id":%d,"verb":"status"}`+"\n", i+1)
		if resp, err := abuseRead(conn, bufio.NewReader(conn), limit); err != nil || !resp.OK {
			t.Fatalf("client %d of %d after the abuse: %+v %v", i+1, control.DefaultMaxConns-4, resp, err)
		}
	}
	conn, _, err := abuseDial(path)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte(`{"id":1,"verb":"status"}` + "\n"))
	if resp, err := abuseRead(conn, bufio.NewReader(conn), limit); err != nil || resp.Error == nil || resp.Error.Code != control.CodeBusy {
		t.Errorf("client %d after the abuse: %+v %v, want busy", control.DefaultMaxConns+1, resp, err)
	}
	conn.Close()
	for _, conn := range extra {
		conn.Close()
	}

	rss2, hwm2, err := procMem(pid)
	if err != nil {
		t.Fatal(err)
	}
	logGrowth := len(in.log()) - log0
	t.Logf("after the abuse: VmRSS %d KiB, VmHWM %d KiB, %d open files (%d before); the log grew by %d bytes",
		rss2, hwm2, fds2, fds0, logGrowth)
	t.Logf("tap latency: quiet %s; under abuse %s; after %s", &quiet, &abused, &after)
	t.Logf("the slowest tap under abuse: %s", abused.phases())
	bound, build := abuseMemBound, "as it ships"
	if raceBuilt(t) {
		bound, build = abuseMemBoundRace, "with the race detector"
	}
	t.Logf("memory (daemon built %s): %d KiB before; during +%d KiB (VmRSS max), after +%d KiB (VmRSS), peak +%d KiB (VmHWM); bound +%d KiB",
		build, rss0, int(rssMax.Load())-rss0, rss2-rss0, hwm2-rss0, bound)
	if grown := int(rssMax.Load()) - rss0; grown > bound {
		t.Errorf("VmRSS grew by %d KiB during the abuse (bound %d KiB)", grown, bound)
	}
	if grown := hwm2 - rss0; grown > bound {
		t.Errorf("VmHWM is %d KiB above the resident set before the abuse (bound %d KiB)", grown, bound)
	}
	if grown := rss2 - rss0; grown > bound {
		t.Errorf("VmRSS is %d KiB above what it was before the abuse (bound %d KiB)", grown, bound)
	}

	// Nothing was lost: every tap counted, every event streamed in order
	// to the client that reads.
	var door control.Reader
	for _, r := range call[control.Status](t, c, control.VerbStatus, nil).Readers {
		if r.Name == "door" {
			door = r
		}
	}
	if door.Taps != uint64(doorTaps) || door.Errors != 0 {
		t.Errorf("door reader: %d taps, %d errors; the test made %d taps", door.Taps, door.Errors, doorTaps)
	}
	call[control.Key](t, ec, control.VerbKeysRename, control.RenameArgs{KeyID: owner.KeyID, Name: "owner"})
	audit := call[[]control.AuditEntry](t, c, control.VerbAudit, control.AuditArgs{Limit: 1})
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		if _, seq := streamed(); seq >= audit[0].Event.Seq {
			break
		}
		if time.Now().After(deadline) {
			_, seq := streamed()
			t.Fatalf("the reading event stream is at event %d, the daemon at %d", seq, audit[0].Event.Seq)
		}
	}
	evMu.Lock()
	t.Logf("the reading event stream got %d events, %d dropped for it, %d out of order", evCount, evDropped, evDisorder)
	if evDisorder != 0 {
		t.Errorf("%d events out of order on the event stream", evDisorder)
	}
	evMu.Unlock()
	if st.Store.Owner != owner.KeyID {
		t.Errorf("status after the abuse: owner %q", st.Store.Owner)
	}
	if strings.Contains(in.log(), "level=ERROR") {
		t.Errorf("errors logged during the abuse")
	}
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// abuseKinds selects the abuse abuseBackground keeps up.
type abuseKinds struct {
	stalled   bool // clients that stall or never read: half lines, silent ones, deaf event streams and callers
	malformed bool // bad requests and oversized lines, one client after another
	flood     bool // 300 clients at once, again and again, most of them told busy
	events    bool // key events as fast as the daemon takes them
}

// abuseBackground keeps the abuse of kinds going until the returned
// function is called, which returns what was done. Clients told busy
// because the others fill MaxConns are part of the abuse, not failures.
func abuseBackground(tb testing.TB, in *instance, ec *control.Client, keyID string, kinds abuseKinds) (stop func() string) {
	path := in.socket()
	const limit = 60 * time.Second
	var held []net.Conn
	if kinds.stalled {
		held = abuseHold(tb, path, abuseHalfLine, true)
		held = append(held, abuseHold(tb, path, abuseSilent, false)...)
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	var floods, served, busy, bad, big, deaf, events atomic.Int64
	var errMu sync.Mutex
	var errs []string
	report := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if len(errs) < 10 {
			errs = append(errs, err.Error())
		}
	}
	loop := func(fn func() error) {
		wg.Go(func() {
			for {
				select {
				case <-quit:
					return
				default:
				}
				if err := fn(); err != nil {
					report(err)
					select {
					case <-quit:
						return
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
		})
	}
	if kinds.flood {
		loop(func() error {
			fl := abuseFloodOnce(path, 300, limit)
			floods.Add(1)
			served.Add(int64(fl.served))
			busy.Add(int64(fl.busy))
			if len(fl.other) > 0 {
				return fmt.Errorf("flood: %s", fl.other[0])
			}
			return nil
		})
	}
	if kinds.malformed {
		loop(func() error {
			err := abuseBadClient(path, limit)
			if errors.Is(err, errAbuseBusy) {
				busy.Add(1)
				return nil
			}
			bad.Add(1)
			return err
		})
		loop(func() error {
			code, err := abuseBigLine(path, control.DefaultMaxLine+1024, true, limit)
			if err == nil && code == control.CodeBusy {
				busy.Add(1)
				return nil
			}
			big.Add(1)
			if err == nil && code != control.CodeTooLarge {
				err = fmt.Errorf("oversized line answered %s", code)
			}
			return err
		})
	}
	if kinds.stalled {
		loop(func() error {
			conns, err := abuseDeafStreams(path, 2)
			if err != nil {
				return err
			}
			conn, done, err := abuseDeafCaller(path, limit)
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return err
			}
			deaf.Add(3)
			select {
			case <-quit:
			case <-time.After(7 * time.Second): // past WriteTimeout: dropped by now
			}
			for _, c := range append(conns, conn) {
				c.Close()
			}
			<-done
			return nil
		})
	}
	if kinds.events {
		wg.Go(func() {
			n, err := abuseChurn(ec, keyID, quit)
			events.Add(int64(n))
			if err != nil {
				report(err)
			}
		})
	}
	return func() string {
		close(quit)
		wg.Wait()
		for _, c := range held {
			c.Close()
		}
		for _, e := range errs {
			tb.Errorf("abuse: %s", e)
		}
		return fmt.Sprintf("%d stalled clients, %d deaf ones; %d floods of 300 clients (%d served); %d malformed-request clients, %d oversized lines; %d told busy; %d key events",
			len(held), deaf.Load(), floods.Load(), served.Load(), bad.Load(), big.Load(), busy.Load(), events.Load())
	}
}

// BenchmarkTapUnderAbuse is the fast door tap, through a client connected
// before any abuse, with the control socket quiet and under each kind of
// abuse of TestControlSocketAbuse, then all at once (abuseBackground). It
// reports the medians of the transaction as the daemon measured it (the
// event's Total) and of the sim.tap round trip. The abusing clients run in
// the benchmark's process, on the same cores as the daemon.
func BenchmarkTapUnderAbuse(b *testing.B) {
	dir := newDir(b, nil)
	in := start(b, dir)
	c := in.client()
	owner := abuseOwner(b, c)
	locked := true
	tc, ec := in.client(), in.client()
	for _, bc := range []struct {
		name  string
		kinds abuseKinds
	}{
		{"quiet", abuseKinds{}},
		{"stalled", abuseKinds{stalled: true}},
		{"malformed", abuseKinds{malformed: true}},
		{"flood", abuseKinds{flood: true}},
		{"events", abuseKinds{events: true}},
		{"all", abuseKinds{stalled: true, malformed: true, flood: true, events: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			stop := abuseBackground(b, in, ec, owner.KeyID, bc.kinds)
			time.Sleep(500 * time.Millisecond) // the abuse under way
			var l latencies
			daemon0, self0, began := procCPU(b, in.cmd.Process.Pid), procCPU(b, os.Getpid()), time.Now()
			for b.Loop() {
				ev, t0, rtt, err := abuseTap(tc, &locked)
				if err != nil {
					b.Fatal(err)
				}
				l.add(ev, t0, rtt)
			}
			daemon1, self1, wall := procCPU(b, in.cmd.Process.Pid), procCPU(b, os.Getpid()), time.Since(began)
			done := stop()
			b.ReportMetric(float64(abuseMedian(l.total).Microseconds()), "total-µs")
			b.ReportMetric(float64(abuseMedian(l.rtt).Microseconds()), "rtt-µs")
			// CPU use in % of one core: the daemon, and this process (the
			// abusing clients and the tap client).
			b.ReportMetric(100*float64(daemon1-daemon0)/float64(wall), "daemon-cpu-%")
			b.ReportMetric(100*float64(self1-self0)/float64(wall), "clients-cpu-%")
			b.Logf("%s; the slowest: %s; abuse: %s", &l, l.phases(), done)
		})
	}
	if code := in.stop(); code != 0 {
		b.Fatalf("exit code %d", code)
	}
}
