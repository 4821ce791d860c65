package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
)

const (
	aliceKey = "0123456789abcdef0123456789abcdef01234567"
	bobKey   = "fedcba9876543210fedcba9876543210fedcba98"
)

var (
	t0      = time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.UTC)
	sampleK = []control.Key{
		{KeyID: aliceKey, Role: "owner", FriendlyName: "Alice", Profile: 0, ProfileName: "owner", State: "active",
			Created: t0, LastUsed: t0.Add(time.Hour), HasKpersistent: true},
		{KeyID: bobKey, Role: "friend", FriendlyName: "Bob", Profile: 2, ProfileName: "valet", State: "suspended",
			Slot: "a1b2c3d4e5f60708", SlotState: "bound", NotBefore: t0, NotAfter: t0.Add(48 * time.Hour), Created: t0},
	}
	sampleTap = control.Event{Seq: 42, Time: t0, Type: "tap", Reader: "door", Role: "door", Result: "denied",
		Path: "fast", KeyID: bobKey, FriendlyName: "Bob", Action: "unlock", Reason: "key_suspended",
		Total:  control.Duration(12345678 * time.Nanosecond),
		Phases: []control.Phase{{Name: "select", Time: control.Duration(1500 * time.Microsecond)}}}
)

// fakeDaemon answers every verb with a canned result and records requests.
type fakeDaemon struct {
	mu       sync.Mutex
	requests []request
	results  map[string]any
	events   []control.Event // published into each subscription, then...
	endSub   bool            // ...the subscription ends (the daemon shuts down)
	dropped  uint64
}

type request struct {
	verb string
	args json.RawMessage
}

func newFakeDaemon() *fakeDaemon {
	return &fakeDaemon{results: map[string]any{
		control.VerbStatus: control.Status{Version: "1.2.3", Uptime: control.Duration(26*time.Hour + 3*time.Minute + 4*time.Second),
			Profile: "ccc", VehicleIdentifier: "0011223344556677", DigitalKeyEnabled: false, DisabledReason: "valet",
			Readers:   []control.Reader{{Name: "door", Role: "door", Backend: "sim", Enabled: true, OK: true, Since: t0, Taps: 7}},
			Store:     control.StoreStats{Path: "/var/lib/dkvehicled/store.db", Owner: aliceKey, Endpoints: 2, Active: 1, FileBytes: 65536},
			Actuators: control.ActuatorState{Lock: "locked"}},
		control.VerbKeysList:  sampleK,
		control.VerbKeysShow:  sampleK[1],
		control.VerbSimTap:    sampleTap,
		control.VerbMetrics:   control.Metrics{Text: "# TYPE dk_taps_total counter\ndk_taps_total 7\n"},
		control.VerbAudit:     []control.AuditEntry{{Seq: 9, Event: sampleTap}},
		control.VerbSimShare:  control.SimShare{From: "alice", To: "bob", FriendKey: bobKey, Slot: "a1b2", MovedEntry: 3},
		control.VerbSimPhones: []control.SimPhone{{Name: "alice", Keys: []string{aliceKey}, Reader: "door"}},
	}}
}

func (d *fakeDaemon) Handle(ctx context.Context, _ control.Peer, verb string, args json.RawMessage) (any, error) {
	d.mu.Lock()
	d.requests = append(d.requests, request{verb, args})
	res := d.results[verb]
	d.mu.Unlock()
	switch r := res.(type) {
	case error:
		return nil, r
	case func(context.Context) error:
		return nil, r(ctx)
	}
	return res, nil
}

func (d *fakeDaemon) Subscribe() control.Subscription {
	s := &fakeSub{ch: make(chan control.Event, len(d.events)), dropped: d.dropped}
	for _, ev := range d.events {
		s.ch <- ev
	}
	if d.endSub {
		close(s.ch)
	}
	return s
}

func (d *fakeDaemon) seen() []request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]request(nil), d.requests...)
}

type fakeSub struct {
	ch      chan control.Event
	dropped uint64
}

func (s *fakeSub) Events() <-chan control.Event { return s.ch }
func (s *fakeSub) Dropped() uint64              { return s.dropped }
func (s *fakeSub) Stop()                        {}

// serve runs d on a fresh socket until the test ends.
func serve(t *testing.T, d *fakeDaemon) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "control.sock")
	srv, err := control.Listen(control.ServerConfig{Path: path, UID: -1, GID: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, d)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(t.Context())
	t.Cleanup(func() { srv.Close() })
	return path
}

// dkctl runs the CLI against socket with args.
func dkctl(t *testing.T, socket string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return dkctlIn(t, socket, "", args...)
}

// dkctlIn runs the CLI against socket with args and stdin.
func dkctlIn(t *testing.T, socket, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(t.Context(), append([]string{"-socket", socket}, args...), strings.NewReader(stdin), &out, &errb, func(string) string { return "" })
	return code, out.String(), errb.String()
}

func TestArgumentsReachTheDaemon(t *testing.T) {
	d := newFakeDaemon()
	socket := serve(t, d)
	verifierFile := filepath.Join(t.TempDir(), "verifier.json")
	if err := os.WriteFile(verifierFile, []byte(`{"w0":"01","n":4096}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args  []string
		verb  string
		want  string // the request's arguments as JSON, "" for none
		stdin string
	}{
		{args: []string{"pairing", "verifier", "--password-stdin"}, verb: control.VerbPairingVerifier, want: `{"password":"12345678"}`, stdin: "12345678\n"},
		{args: []string{"pairing", "verifier", "--file", verifierFile}, verb: control.VerbPairingVerifier, want: `{"file":"{\"w0\":\"01\",\"n\":4096}"}`},
		{args: []string{"pairing", "start"}, verb: control.VerbPairingStart, want: `{}`},
		{args: []string{"pairing", "start", "--for", "2m"}, verb: control.VerbPairingStart, want: `{"timeout_s":120}`},
		{args: []string{"pairing", "cancel"}, verb: control.VerbPairingCancel},
		{args: []string{"pairing", "status"}, verb: control.VerbPairingStatus},
		{args: []string{"sim", "pairing-password", "alice", "12345678"}, verb: control.VerbSimPassword, want: `{"phone":"alice","password":"12345678"}`},
		{args: []string{"status"}, verb: control.VerbStatus},
		{args: []string{"vehicle", "show"}, verb: control.VerbVehicle},
		{args: []string{"vehicle", "digital-key", "off", "--reason", "valet"}, verb: control.VerbDigitalKey, want: `{"enabled":false,"reason":"valet"}`},
		{args: []string{"vehicle", "digital-key", "on"}, verb: control.VerbDigitalKey, want: `{"enabled":true}`},
		{args: []string{"reader", "enable", "door"}, verb: control.VerbReaderEnable, want: `{"reader":"door","enabled":true}`},
		{args: []string{"reader", "disable", "dash"}, verb: control.VerbReaderEnable, want: `{"reader":"dash","enabled":false}`},
		{args: []string{"keys", "list"}, verb: control.VerbKeysList},
		{args: []string{"keys", "show", "0123456789ab"}, verb: control.VerbKeysShow, want: `{"key_id":"0123456789ab"}`},
		{args: []string{"keys", "revoke", "01234567"}, verb: control.VerbKeysRevoke, want: `{"key_id":"01234567"}`},
		{args: []string{"keys", "suspend", "01234567"}, verb: control.VerbKeysSuspend, want: `{"key_id":"01234567"}`},
		{args: []string{"keys", "resume", "01234567"}, verb: control.VerbKeysResume, want: `{"key_id":"01234567"}`},
		{args: []string{"keys", "rename", "01234567", "Bob's car key"}, verb: control.VerbKeysRename, want: `{"key_id":"01234567","name":"Bob's car key"}`},
		{args: []string{"keys", "rename", "--", "01234567", "-dash-"}, verb: control.VerbKeysRename, want: `{"key_id":"01234567","name":"-dash-"}`},
		{args: []string{"keys", "profile", "01234567", "3"}, verb: control.VerbKeysProfile, want: `{"key_id":"01234567","profile":3}`},
		{args: []string{"keys", "window", "01234567", "--not-before", "2026-05-01T18:00:00+02:00", "--not-after", ""},
			verb: control.VerbKeysWindow, want: `{"key_id":"01234567","not_before":"2026-05-01T18:00:00+02:00","not_after":""}`},
		{args: []string{"keys", "window", "--not-after=2026-05-02T00:00:00Z", "01234567", "--not-before="},
			verb: control.VerbKeysWindow, want: `{"key_id":"01234567","not_before":"","not_after":"2026-05-02T00:00:00Z"}`},
		{args: []string{"slots", "list"}, verb: control.VerbSlotsList},
		{args: []string{"slots", "revoke", "a1b2c3d4"}, verb: control.VerbSlotsRevoke, want: `{"slot":"a1b2c3d4"}`},
		{args: []string{"profiles", "list"}, verb: control.VerbProfiles},
		{args: []string{"audit"}, verb: control.VerbAudit, want: `{}`},
		{args: []string{"audit", "-n", "5"}, verb: control.VerbAudit, want: `{"limit":5}`},
		{args: []string{"metrics"}, verb: control.VerbMetrics},
		{args: []string{"store", "check"}, verb: control.VerbStoreCheck},
		{args: []string{"sim", "phones"}, verb: control.VerbSimPhones},
		{args: []string{"sim", "phone", "new", "alice"}, verb: control.VerbSimNewPhone, want: `{"phone":"alice"}`},
		{args: []string{"sim", "enrol-owner", "alice"}, verb: control.VerbSimEnrolOwner, want: `{"phone":"alice"}`},
		{args: []string{"sim", "place", "alice", "door"}, verb: control.VerbSimPlace, want: `{"phone":"alice","reader":"door"}`},
		{args: []string{"sim", "remove", "door"}, verb: control.VerbSimRemove, want: `{"reader":"door"}`},
		{args: []string{"sim", "tap", "alice", "door"}, verb: control.VerbSimTap, want: `{"phone":"alice","reader":"door"}`},
		{args: []string{"sim", "tap", "alice", "dash", "--drop-at", "3"}, verb: control.VerbSimTap, want: `{"phone":"alice","reader":"dash","drop_at":3}`},
		{args: []string{"sim", "share", "alice", "bob", "--profile", "2", "--name", "Bob"}, verb: control.VerbSimShare,
			want: `{"from":"alice","to":"bob","profile":2,"name":"Bob"}`},
		{args: []string{"sim", "share", "--name=Bob", "alice", "--profile=0", "bob", "--not-after", "2026-06-01T00:00:00Z"}, verb: control.VerbSimShare,
			want: `{"from":"alice","to":"bob","profile":0,"name":"Bob","not_after":"2026-06-01T00:00:00Z"}`},
	} {
		before := len(d.seen())
		code, _, stderr := dkctlIn(t, socket, tc.stdin, tc.args...)
		if code != 0 {
			t.Errorf("dkctl %q: exit %d, %s", tc.args, code, stderr)
			continue
		}
		reqs := d.seen()[before:]
		if len(reqs) != 1 || reqs[0].verb != tc.verb {
			t.Errorf("dkctl %q sent %v, want one %s", tc.args, reqs, tc.verb)
			continue
		}
		if !sameJSON(reqs[0].args, tc.want) {
			t.Errorf("dkctl %q sent arguments %s, want %s", tc.args, reqs[0].args, tc.want)
		}
	}
}

func sameJSON(got json.RawMessage, want string) bool {
	if want == "" {
		return len(got) == 0
	}
	var g, w any
	return json.Unmarshal(got, &g) == nil && json.Unmarshal([]byte(want), &w) == nil && reflect.DeepEqual(g, w)
}

func TestKeysListOutput(t *testing.T) {
	socket := serve(t, newFakeDaemon())

	code, out, _ := dkctl(t, socket, "keys", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	for _, want := range [][]string{
		{"KEY", "ROLE", "NAME", "PROFILE", "STATE", "SLOT", "VALID", "LAST", "USED", "FAST", "PATH"},
		{"0123456789ab", "owner", "Alice", "0", "(owner)", "active", "-", "always", t0.Add(time.Hour).Local().Format("2006-01-02"),
			t0.Add(time.Hour).Local().Format("15:04:05"), "yes"},
		{"fedcba987654", "friend", "Bob", "2", "(valet)", "suspended", "a1b2c3d4e5f60708", "(bound)",
			t0.Local().Format("2006-01-02"), t0.Local().Format("15:04:05"), "to", t0.Add(48 * time.Hour).Local().Format("2006-01-02"),
			t0.Add(48 * time.Hour).Local().Format("15:04:05"), "-", "no"},
	} {
		if got := strings.Fields(lines[0]); !reflect.DeepEqual(got, want) {
			t.Errorf("row\n%q\nwant\n%q", got, want)
		}
		lines = lines[1:]
	}
	if strings.Contains(out, aliceKey) {
		t.Error("the table shows full key ids")
	}

	code, out, _ = dkctl(t, socket, "keys", "list", "--json")
	var keys []control.Key
	if err := json.Unmarshal([]byte(out), &keys); code != 0 || err != nil {
		t.Fatalf("--json: exit %d, %v:\n%s", code, err, out)
	}
	if !reflect.DeepEqual(keys, sampleK) {
		t.Errorf("--json keys\n%+v\nwant\n%+v", keys, sampleK)
	}
}

func TestSimTapOutput(t *testing.T) {
	socket := serve(t, newFakeDaemon())
	code, out, stderr := dkctl(t, socket, "sim", "tap", "bob", "door")
	if code != 0 {
		t.Fatalf("a denied tap: exit %d, %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || lines[0] != "tap on door: DENIED unlock (key_suspended)" {
		t.Fatalf("output:\n%s", out)
	}
	if got, want := strings.Fields(lines[2]), eventHeader; !reflect.DeepEqual(got, want) {
		t.Errorf("header %q, want %q", got, want)
	}
	want := []string{t0.Local().Format("15:04:05.000"), "tap", "door", "denied", "unlock", "fedcba987654", "(Bob)", "fast", "key_suspended", "12.35"}
	if got := strings.Fields(lines[3]); !reflect.DeepEqual(got, want) {
		t.Errorf("row %q, want %q", got, want)
	}
	if lines[5] != "phases: select 1.50 ms" {
		t.Errorf("phases line %q", lines[5])
	}

	code, out, _ = dkctl(t, socket, "--json", "sim", "tap", "bob", "door")
	var ev control.Event
	if err := json.Unmarshal([]byte(out), &ev); code != 0 || err != nil || !reflect.DeepEqual(ev, sampleTap) {
		t.Errorf("--json: exit %d, %v, %+v", code, err, ev)
	}
}

func TestStatusOutput(t *testing.T) {
	code, out, _ := dkctl(t, serve(t, newFakeDaemon()), "status")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"version        1.2.3\n",
		"uptime         1d2h3m4s\n",
		"digital key    off (valet)\n",
		"engine         not authorized\n",
		"door           unknown\n",
		"store          /var/lib/dkvehicled/store.db (64.0 KiB)\n",
		"owner          0123456789ab\n",
		"keys           2 (1 active)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "\ndoor    door  sim      yes      ok      ") {
		t.Errorf("status lacks the reader row:\n%s", out)
	}
}

// TestStoreCheckOutput: a consistent store says so (exit 0); problems are
// printed one per line and the command fails with exit status 1, with
// --json too.
func TestStoreCheckOutput(t *testing.T) {
	d := newFakeDaemon()
	d.results[control.VerbStoreCheck] = control.StoreCheck{Path: "/var/lib/dkvehicled/store.db", Keys: 2, Slots: 9, Problems: []string{}}
	code, out, stderr := dkctl(t, serve(t, d), "store", "check")
	if code != 0 || out != "store ok: 2 keys, 9 slots (/var/lib/dkvehicled/store.db)\n" || stderr != "" {
		t.Errorf("consistent: exit %d, stdout %q, stderr %q", code, out, stderr)
	}

	d = newFakeDaemon()
	bad := control.StoreCheck{Path: "/s.db", Keys: 2, Slots: 9, Problems: []string{
		"slot 0102: bound to unknown endpoint " + bobKey,
		"endpoint " + aliceKey + ": a friend key without a slot",
	}}
	d.results[control.VerbStoreCheck] = bad
	socket := serve(t, d)
	code, out, stderr = dkctl(t, socket, "store", "check")
	if want := bad.Problems[0] + "\n" + bad.Problems[1] + "\n"; code != 1 || out != want ||
		stderr != "dkctl: store_inconsistent: 2 problem(s) in /s.db\n" {
		t.Errorf("problems: exit %d, stdout %q, stderr %q; want exit 1, stdout %q", code, out, stderr, want)
	}
	code, out, _ = dkctl(t, socket, "--json", "store", "check")
	var got control.StoreCheck
	if err := json.Unmarshal([]byte(out), &got); code != 1 || err != nil || !reflect.DeepEqual(got, bad) {
		t.Errorf("--json: exit %d, %v, %+v", code, err, got)
	}
}

func TestMetricsPrintedAsIs(t *testing.T) {
	code, out, _ := dkctl(t, serve(t, newFakeDaemon()), "metrics")
	if code != 0 || out != "# TYPE dk_taps_total counter\ndk_taps_total 7\n" {
		t.Errorf("exit %d, output %q", code, out)
	}
}

// lineWriter counts the lines written to it and cancels a context after n.
type lineWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	n      int
	cancel context.CancelFunc
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if bytes.Count(w.buf.Bytes(), []byte("\n")) >= w.n {
		w.cancel()
	}
	return len(p), nil
}

func TestEventsFollowsUntilInterrupted(t *testing.T) {
	d := newFakeDaemon()
	second := sampleTap
	second.Seq, second.Result, second.Reason, second.Action = 43, "allowed", "", "lock"
	d.events, d.dropped = []control.Event{sampleTap, second}, 3
	socket := serve(t, d)

	for _, tc := range []struct {
		json  bool
		lines int
	}{{false, 3}, {true, 2}} {
		ctx, cancel := context.WithCancel(t.Context())
		out := &lineWriter{n: tc.lines, cancel: cancel}
		var stderr bytes.Buffer
		args := []string{"-socket", socket, "events"}
		if tc.json {
			args = append(args, "--json")
		}
		if code := run(ctx, args, nil, out, &stderr, func(string) string { return "" }); code != 0 {
			t.Fatalf("events interrupted: exit %d, %s", code, stderr.String())
		}
		if stderr.String() != "dkctl: 3 event(s) lost: dkctl read too slowly\n" {
			t.Errorf("stderr %q", stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(out.buf.String()), "\n")
		if tc.json {
			for i, want := range []uint64{42, 43} {
				var ev control.Event
				if err := json.Unmarshal([]byte(lines[i]), &ev); err != nil || ev.Seq != want {
					t.Errorf("JSON line %d: %q (%v)", i, lines[i], err)
				}
			}
			continue
		}
		if len(lines) != 3 || lines[0] != eventStreamHeader() ||
			!strings.Contains(lines[1], "denied    unlock      fedcba987654 (Bob)           fast      key_suspended       12.35") ||
			!strings.Contains(lines[2], "allowed   lock        fedcba987654 (Bob)           fast      -                   12.35") {
			t.Errorf("stream:\n%s", out.buf.String())
		}
	}
}

func TestEventsEndedByTheDaemon(t *testing.T) {
	d := newFakeDaemon()
	d.events, d.endSub = []control.Event{sampleTap}, true
	code, out, stderr := dkctl(t, serve(t, d), "events")
	if code != 3 || stderr != "dkctl: dkvehicled closed the connection\n" || strings.Count(out, "\n") != 2 {
		t.Errorf("exit %d, stderr %q, stdout:\n%s", code, stderr, out)
	}
}

func TestDaemonErrors(t *testing.T) {
	d := newFakeDaemon()
	d.results[control.VerbKeysRevoke] = control.Errorf(control.CodeUnknownKey, "no key starts with 01234567")
	d.results[control.VerbSlotsList] = control.Errorf(control.CodePermissionDenied, "uid 1000 is not allowed to use dkvehicled's control socket")
	d.results[control.VerbKeysList] = func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	socket := serve(t, d)

	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"keys", "revoke", "01234567"}, 1, "dkctl: unknown_key: no key starts with 01234567\n"},
		{[]string{"slots", "list"}, 3, "dkctl: permission_denied: uid 1000 is not allowed to use dkvehicled's control socket\n"},
		{[]string{"-timeout", "50ms", "keys", "list"}, 3, "dkctl: no answer from dkvehicled within 50ms (see -timeout)\n"},
	} {
		code, out, stderr := dkctl(t, socket, tc.args...)
		if code != tc.code || stderr != tc.stderr || out != "" {
			t.Errorf("dkctl %q: exit %d, stderr %q, stdout %q; want exit %d, stderr %q", tc.args, code, stderr, out, tc.code, tc.stderr)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	d := newFakeDaemon()
	socket := serve(t, d)
	for _, args := range [][]string{
		{},
		{"-bogus"},
		{"nope"},
		{"keys"},
		{"keys", "nope"},
		{"keys", "show"},
		{"keys", "show", "a", "b"},
		{"keys", "profile", "01234567", "three"},
		{"keys", "window", "01234567"},
		{"keys", "window", "01234567", "--not-before", "yesterday", "--not-after", ""},
		{"vehicle", "digital-key", "maybe"},
		{"audit", "-n", "x"},
		{"audit", "-n", "-1"},
		{"sim", "share", "alice", "bob", "--name", "Bob"},
		{"sim", "share", "alice", "bob", "--profile", "1"},
		{"status", "--color"},
		{"help", "nope"},
	} {
		code, out, stderr := dkctl(t, socket, args...)
		if code != 2 || !strings.HasPrefix(stderr, "dkctl: ") && !strings.HasPrefix(stderr, "usage: ") || out != "" {
			t.Errorf("dkctl %q: exit %d, stderr %q, stdout %q; want exit 2 and a message", args, code, stderr, out)
		}
	}
	if reqs := d.seen(); len(reqs) != 0 {
		t.Errorf("usage errors reached the daemon: %v", reqs)
	}
}

func TestNoDaemon(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "control.sock")
	code, _, stderr := dkctl(t, missing, "status")
	if code != 3 || stderr != "dkctl: dkvehicled is not running (no socket at "+missing+")\n" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}

	// DKCTL_SOCKET names the socket when -socket does not.
	var out, errb bytes.Buffer
	env := func(k string) string { return map[string]string{"DKCTL_SOCKET": missing}[k] }
	if code := run(t.Context(), []string{"events"}, nil, &out, &errb, env); code != 3 || !strings.Contains(errb.String(), missing) {
		t.Errorf("with DKCTL_SOCKET: exit %d, stderr %q", code, errb.String())
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := dkctl(t, "unused", "help")
	if code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	for _, c := range commands {
		if !strings.Contains(out, "\n  "+c.synopsis()) || !strings.Contains(out, "  "+c.summary+"\n") {
			t.Errorf("help lacks %q: %s", c.synopsis(), c.summary)
		}
	}
	for _, args := range [][]string{{"keys", "window", "-h"}, {"help", "keys", "window"}, {"keys", "window", "01234567", "--help"}} {
		code, out, _ := dkctl(t, "unused", args...)
		if code != 0 || !strings.HasPrefix(out, "usage: dkctl keys window KEY --not-before TIME --not-after TIME\n") ||
			!strings.Contains(out, "-not-after string") {
			t.Errorf("dkctl %q: exit %d:\n%s", args, code, out)
		}
	}
}
