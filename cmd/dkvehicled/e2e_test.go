package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"debug/buildinfo"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/internal/pki"
)

// The end-to-end tests start the real dkvehicled binary on the simulator in a
// temporary directory and talk to it only through its control socket.

var binary string

// buildTags are the tags the daemon under test is built with (pcsc in the
// PC/SC end-to-end tests).
var buildTags = ""

func TestMain(m *testing.M) {
	if os.Getenv("DKVEHICLED_PEER_SOCKET") != "" {
		os.Exit(m.Run()) // TestRefusedPeer's child: no daemon to build
	}
	dir, err := os.MkdirTemp("", "dkvehicled-e2e-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "dkvehicled")
	// Tests run the daemon with the race detector; benchmarks measure it as
	// it ships.
	flag.Parse()
	race := "-race"
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		race = "-race=false"
	}
	if out, err := exec.Command("go", "build", race, "-tags", buildTags, "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building dkvehicled: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instance is one daemon process and its working directory.
type instance struct {
	t      testing.TB
	dir    string
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan error
}

func (in *instance) Write(p []byte) (int, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stderr.Write(p)
}

func (in *instance) log() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stderr.String()
}

// raceBuilt reports whether the daemon under test was built with the race
// detector.
func raceBuilt(t testing.TB) bool {
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// newDir makes a working directory with the simulator configuration (edited
// by edit, if given) and a fresh vehicle key.
func newDir(t testing.TB, edit func(string) string) string {
	dir, err := os.MkdirTemp("", "dkvehicled-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg, err := os.ReadFile("../../configs/simulator.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(cfg)
	if edit != nil {
		s = edit(s)
	}
	if raceBuilt(t) {
		// The race detector slows the simulated phone's scrypt (every test
		// pairs an owner) to a few hundred ms on a busy 2-core machine,
		// near PROTOCOL.md 7's 500 ms: timeouts four times longer keep the
		// tests about the daemon, not the detector (unless edit set them).
		s = strings.NewReplacer(`apdu = "500ms"`, `apdu = "2s"`, `long = "1s"`, `long = "4s"`, `transaction = "2s"`, `transaction = "8s"`).Replace(s)
	}
	if err := os.WriteFile(filepath.Join(dir, "dkvehicled.toml"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(binary, "-init-key", filepath.Join(dir, "vehicle.key")).CombinedOutput(); err != nil {
		t.Fatalf("-init-key: %v %s", err, out)
	}
	benchPKI(t, dir)
	return dir
}

// benchPKI makes the bench PKI the simulator configuration names (pki/):
// what dkpki init does.
func benchPKI(t testing.TB, dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "vehicle.key"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("vehicle.key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.Init(filepath.Join(dir, "pki"), rand.Reader, &k.(*ecdsa.PrivateKey).PublicKey, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// start runs the daemon in dir and waits until its socket answers.
func start(t testing.TB, dir string) *instance {
	t.Helper()
	in := &instance{t: t, dir: dir, done: make(chan error, 1)}
	in.cmd = exec.Command(binary, "-config", filepath.Join(dir, "dkvehicled.toml"))
	in.cmd.Stderr = in
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { in.done <- in.cmd.Wait() }()
	t.Cleanup(func() {
		if in.cmd.ProcessState == nil {
			in.cmd.Process.Kill()
			<-in.done
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", in.log())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := control.Dial(in.socket())
		if err == nil {
			var st control.Status
			err = c.Call(context.Background(), control.VerbStatus, nil, &st)
			c.Close()
			if err == nil {
				return in
			}
		}
		select {
		case err := <-in.done:
			t.Fatalf("daemon exited before it was ready: %v\n%s", err, in.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not ready: %v\n%s", err, in.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (in *instance) socket() string { return filepath.Join(in.dir, "control.sock") }

// stop sends SIGTERM and returns the exit code.
func (in *instance) stop() int {
	in.t.Helper()
	in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(15 * time.Second):
		in.t.Fatal("daemon did not stop within 15 s of SIGTERM")
	}
	return in.cmd.ProcessState.ExitCode()
}

func (in *instance) client() *control.Client {
	in.t.Helper()
	c, err := control.Dial(in.socket())
	if err != nil {
		in.t.Fatal(err)
	}
	in.t.Cleanup(func() { c.Close() })
	return c
}

func call[T any](t testing.TB, c *control.Client, verb string, args any) T {
	t.Helper()
	var out T
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Call(ctx, verb, args, &out); err != nil {
		t.Fatalf("%s: %v", verb, err)
	}
	return out
}

func callErr(c *control.Client, verb string, args any) *control.Error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out any
	err := c.Call(ctx, verb, args, &out)
	var ce *control.Error
	if errors.As(err, &ce) {
		return ce
	}
	return nil
}

func tap(t testing.TB, c *control.Client, phone, reader string) control.Event {
	t.Helper()
	return call[control.Event](t, c, control.VerbSimTap, control.SimPlaceArgs{Phone: phone, Reader: reader})
}

func expect(t testing.TB, ev control.Event, result, action, path, reason string) {
	t.Helper()
	if ev.Result != result || ev.Action != action || ev.Path != path || ev.Reason != reason {
		t.Fatalf("tap at %s: got %s %s path %s reason %q (%s); want %s %s path %s reason %q",
			ev.Reader, ev.Result, ev.Action, ev.Path, ev.Reason, ev.Detail, result, action, path, reason)
	}
	if ev.Actuated != (result == "allowed") {
		t.Fatalf("tap at %s: actuated %v with result %s", ev.Reader, ev.Actuated, result)
	}
}

// ownerPassword is the one-time pairing password of the tests.
const ownerPassword = "31415926"

// setupOwner makes the owner's phone and pairs it as the owner would: a
// verifier for the password, pairing mode, the password typed on the phone,
// the phone laid on the dashboard reader.
func setupOwner(t testing.TB, c *control.Client) control.Key {
	t.Helper()
	call[control.SimPhone](t, c, control.VerbSimNewPhone, control.SimPhoneArgs{Phone: "owner"})
	ev := pairPhone(t, c, "owner", ownerPassword, ownerPassword)
	if ev.Type != "pairing" || ev.Result != "paired" || ev.KeyID == "" {
		t.Fatalf("pairing: %+v", ev)
	}
	return call[control.Key](t, c, control.VerbKeysShow, control.KeyArgs{KeyID: ev.KeyID})
}

// pairPhone gives the vehicle a verifier for password, starts pairing mode,
// types typed on the phone and lays it on the dashboard; it returns the
// pairing's event.
func pairPhone(t testing.TB, c *control.Client, phone, password, typed string) control.Event {
	t.Helper()
	call[control.PairingStatus](t, c, control.VerbPairingVerifier, control.VerifierArgs{Password: password})
	if st := call[control.PairingStatus](t, c, control.VerbPairingStart, control.PairingStartArgs{}); !st.Mode || st.AttemptsLeft != 7 {
		t.Fatalf("pairing start: %+v", st)
	}
	call[control.SimPhone](t, c, control.VerbSimPassword, control.SimPasswordArgs{Phone: phone, Password: typed})
	return tap(t, c, phone, "dashboard")
}

// TestStoryThroughTheSocket drives the whole story through the running
// daemon and checks the events stream, the status, the metrics and the audit
// log; then restarts the daemon and checks that nothing was lost.
func TestStoryThroughTheSocket(t *testing.T) {
	dir := newDir(t, nil)
	in := start(t, dir)
	c := in.client()

	// Follow the event stream from the start.
	var evMu sync.Mutex
	var streamed []control.Event
	streamCtx, stopStream := context.WithCancel(context.Background())
	defer stopStream()
	stream := in.client()
	streamErr := make(chan error, 1)
	go func() {
		streamErr <- stream.Events(streamCtx, func(ev control.Event, dropped uint64) error {
			evMu.Lock()
			streamed = append(streamed, ev)
			evMu.Unlock()
			return nil
		})
	}()
	// The stream is open once it delivers the event of a switch flip.
	streamedCount := func() int {
		evMu.Lock()
		defer evMu.Unlock()
		return len(streamed)
	}
	for i := 0; streamedCount() == 0; i++ {
		if i == 100 {
			t.Fatal("the event stream delivers nothing")
		}
		call[control.Status](t, c, control.VerbDigitalKey, control.SwitchArgs{Enabled: true})
		time.Sleep(20 * time.Millisecond)
	}
	base := streamedCount()

	owner := setupOwner(t, c)
	if owner.Role != "owner" || owner.State != "active" || owner.Slot == "" {
		t.Fatalf("enrolled owner %+v", owner)
	}
	expect(t, tap(t, c, "owner", "door"), "allowed", "unlock", "standard", "")
	expect(t, tap(t, c, "owner", "door"), "allowed", "lock", "fast", "")
	ev := tap(t, c, "owner", "dashboard")
	expect(t, ev, "allowed", "engine_start", "standard", "")
	if ev.Provisioned != 7 || ev.KeyID != owner.KeyID || len(ev.Phases) == 0 || ev.Total <= 0 {
		t.Fatalf("engine start event %+v", ev)
	}
	call[control.SimPhone](t, c, control.VerbSimNewPhone, control.SimPhoneArgs{Phone: "alice"})
	sh := call[control.SimShare](t, c, control.VerbSimShare, control.SimShareArgs{From: "owner", To: "alice", Profile: 1, Name: "Alice"})
	ev = tap(t, c, "alice", "door")
	expect(t, ev, "allowed", "unlock", "standard+friend_first_use", "")
	if !ev.FirstUse || ev.KeyID != sh.FriendKey || ev.FriendlyName != "Alice" {
		t.Fatalf("first use event %+v", ev)
	}
	expect(t, tap(t, c, "alice", "dashboard"), "denied", "engine_start", "standard", "not_permitted")
	revoked := call[control.Key](t, c, control.VerbKeysRevoke, control.KeyArgs{KeyID: sh.FriendKey[:12]})
	if revoked.State != "terminated" || revoked.SlotState != "revoked" {
		t.Fatalf("revoked %+v", revoked)
	}
	// The car is unlocked now: a door tap asks to lock.
	expect(t, tap(t, c, "alice", "door"), "denied", "lock", "standard", "key_not_valid")
	expect(t, tap(t, c, "owner", "door"), "allowed", "lock", "fast", "")

	st := call[control.Status](t, c, control.VerbStatus, nil)
	if st.Store.Endpoints != 2 || st.Store.Active != 1 || st.Actuators.Lock != "locked" || len(st.Readers) != 2 || st.Readers[0].Taps+st.Readers[1].Taps != 8 {
		t.Fatalf("status %+v", st)
	}
	if st.Actuators.EngineAuthorizedUntil.IsZero() {
		t.Fatal("engine start authorization not recorded")
	}
	m := call[control.Metrics](t, c, control.VerbMetrics, nil)
	for _, want := range []string{
		`dkvehicled_taps_total{reader="door",result="allowed"} 4`,
		`dkvehicled_taps_total{reader="door",result="denied"} 1`,
		`dkvehicled_taps_total{reader="dashboard",result="denied"} 1`,
		`dkvehicled_tap_phase_seconds_bucket{reader="door",phase="auth0",le="+Inf"} 5`,
		`dkvehicled_reader_up{reader="door",backend="sim"} 1`,
	} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("metrics lack %s:\n%s", want, m.Text)
		}
	}
	audit := call[[]control.AuditEntry](t, c, control.VerbAudit, control.AuditArgs{Limit: 100})
	var pairings []string
	taps, keyEvents := 0, 0
	for _, a := range audit {
		switch a.Event.Type {
		case "tap":
			taps++
		case "key":
			keyEvents++
		case "pairing":
			pairings = append(pairings, a.Event.Action)
		}
	}
	if taps != 7 || keyEvents != 1 { // revoke
		t.Fatalf("audit: %d taps, %d key events", taps, keyEvents)
	}
	if want := []string{"verifier", "start", "paired"}; !slices.Equal(pairings, want) && !slices.Equal(pairings, []string{"paired", "start", "verifier"}) {
		t.Fatalf("audit: pairing events %v, want %v", pairings, want)
	}
	if !strings.Contains(m.Text, `dkvehicled_pairings_total{result="paired"} 1`) {
		t.Errorf("metrics lack the pairing:\n%s", m.Text)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := streamedCount() - base
		if n >= 11 {
			break
		}
		if time.Now().After(deadline) {
			select {
			case err := <-streamErr:
				t.Fatalf("event stream ended: %v", err)
			default:
			}
			t.Fatalf("event stream delivered %d events, want 11", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The log names keys and slots but never carries key material.
	if strings.Contains(in.log(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", in.log())
	}

	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	// Nothing lost across a restart: keys, audit, simulated phones, Kpersistent.
	in = start(t, dir)
	c = in.client()
	keys := call[[]control.Key](t, c, control.VerbKeysList, nil)
	if len(keys) != 2 || keys[1].State != "terminated" || !keys[0].HasKpersistent {
		t.Fatalf("keys after restart %+v", keys)
	}
	if a := call[[]control.AuditEntry](t, c, control.VerbAudit, control.AuditArgs{Limit: 100}); len(a) != len(audit) {
		t.Fatalf("audit after restart: %d entries, want %d", len(a), len(audit))
	}
	expect(t, tap(t, c, "owner", "door"), "allowed", "unlock", "fast", "")
	expect(t, tap(t, c, "alice", "door"), "denied", "lock", "standard", "key_not_valid")
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestSwitchesEndTapsAfterSelect: the vehicle-wide switch and a disabled
// reader end taps right after SELECT with CONTROL FLOW 00 08, say why, and
// survive a restart.
func TestSwitchesEndTapsAfterSelect(t *testing.T) {
	dir := newDir(t, nil)
	in := start(t, dir)
	c := in.client()
	setupOwner(t, c)
	st := call[control.Status](t, c, control.VerbDigitalKey, control.SwitchArgs{Enabled: false, Reason: "valet"})
	if st.DigitalKeyEnabled || st.DisabledReason != "valet" {
		t.Fatalf("status %+v", st)
	}
	ev := tap(t, c, "owner", "door")
	expect(t, ev, "denied", "unlock", "none", "digital_key_disabled")
	if !strings.Contains(ev.Detail, "valet") || ev.KeyID != "" {
		t.Fatalf("event %+v", ev)
	}
	in.stop()
	in = start(t, dir)
	c = in.client()
	expect(t, tap(t, c, "owner", "door"), "denied", "unlock", "none", "digital_key_disabled")
	call[control.Status](t, c, control.VerbDigitalKey, control.SwitchArgs{Enabled: true})
	call[control.Status](t, c, control.VerbReaderEnable, control.ReaderEnableArgs{Reader: "dashboard", Enabled: false})
	ev = tap(t, c, "owner", "dashboard")
	expect(t, ev, "denied", "engine_start", "none", "digital_key_disabled")
	if !strings.Contains(ev.Detail, "reader dashboard disabled") {
		t.Fatalf("event %+v", ev)
	}
	expect(t, tap(t, c, "owner", "door"), "allowed", "unlock", "standard", "")
	if e := callErr(c, control.VerbReaderEnable, control.ReaderEnableArgs{Reader: "trunk", Enabled: false}); e == nil || e.Code != control.CodeUnknownKey {
		t.Fatalf("unknown reader: %v", e)
	}
}

// TestBadInput: malformed requests, unknown verbs, a huge line, a client that
// leaves mid-stream, a second daemon on the same store: clear errors, and the
// daemon stays up with nothing lost.
func TestBadInput(t *testing.T) {
	dir := newDir(t, nil)
	in := start(t, dir)
	c := in.client()
	setupOwner(t, c)

	raw := func(line string) string {
		conn, err := dialRaw(in.socket())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write([]byte(line + "\n")); err != nil {
			return "write: " + err.Error()
		}
		r, _ := bufio.NewReader(conn).ReadString('\n')
		return r
	}
	if r := raw(`{"id":1,"verb":`); !strings.Contains(r, control.CodeBadRequest) {
		t.Errorf("malformed JSON: %s", r)
	}
	if r := raw(`{"id":2,"verb":"launch.missiles"}`); !strings.Contains(r, control.CodeUnknownVerb) {
		t.Errorf("unknown verb: %s", r)
	}
	if r := raw(`{"id":3,"verb":"keys.show","args":{"key_id":"zz"}}`); !strings.Contains(r, control.CodeBadRequest) {
		t.Errorf("bad key: %s", r)
	}
	if r := raw(`{"id":4,"verb":"keys.revoke","args":{"key_id":"0123456789abcdef"}}`); !strings.Contains(r, control.CodeUnknownKey) {
		t.Errorf("unknown key: %s", r)
	}
	if r := raw(`{"id":5,"verb":"status","args":{"bogus":1}}`); !strings.Contains(r, `"ok":true`) {
		t.Errorf("status with ignored args: %s", r)
	}
	if r := raw(`{"id":6,"verb":"keys.rename","args":{"key_id":"00000000","name":"x","extra":1}}`); !strings.Contains(r, control.CodeBadRequest) {
		t.Errorf("unknown argument: %s", r)
	}
	if r := raw(`{"id":7,"verb":"status","args":"` + strings.Repeat("A", 1<<20) + `"}`); !strings.Contains(r, control.CodeTooLarge) && !strings.HasPrefix(r, "write:") {
		t.Errorf("huge line: %q", r[:min(len(r), 200)])
	}
	// A client that opens the event stream and vanishes.
	conn, err := dialRaw(in.socket())
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte(`{"id":1,"verb":"events"}` + "\n"))
	time.Sleep(50 * time.Millisecond)
	conn.Close()
	expect(t, tap(t, c, "owner", "door"), "allowed", "unlock", "standard", "")

	// A second daemon on the same store and socket refuses to start.
	second := exec.Command(binary, "-config", filepath.Join(dir, "dkvehicled.toml"))
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another dkvehicled") {
		t.Fatalf("second daemon: %v\n%s", err, out)
	}
	// The first is unharmed.
	if keys := call[[]control.Key](t, c, control.VerbKeysList, nil); len(keys) != 1 || !keys[0].HasKpersistent {
		t.Fatalf("keys %+v", keys)
	}
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestRefusedPeer: a uid the configuration does not allow is refused with a
// clear error, checked by SO_PEERCRED (the socket is world-writable here so
// that only the daemon's check can refuse).
func TestRefusedPeer(t *testing.T) {
	dir := newDir(t, func(s string) string { return strings.Replace(s, `mode = "0660"`, `mode = "0666"`, 1) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	in := start(t, dir)
	// The test binary may sit where nobody cannot reach it: run a copy.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, "peer-helper")
	if err := os.WriteFile(copyPath, self, 0o755); err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(copyPath, "-test.run=^TestPeerHelper$")
	helper.Env = append(os.Environ(), "DKVEHICLED_PEER_SOCKET="+in.socket())
	helper.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := helper.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "REFUSED: "+control.CodePermissionDenied) || !strings.Contains(string(out), "uid 65534") {
		t.Fatalf("nobody was not refused:\n%s", out)
	}
	// Root still gets in.
	call[control.Status](t, in.client(), control.VerbStatus, nil)
}

// TestPeerHelper runs as nobody inside TestRefusedPeer.
func TestPeerHelper(t *testing.T) {
	path := os.Getenv("DKVEHICLED_PEER_SOCKET")
	if path == "" {
		return // only meaningful as TestRefusedPeer's child
	}
	c, err := control.Dial(path)
	if err == nil {
		var st control.Status
		err = c.Call(context.Background(), control.VerbStatus, nil, &st)
	}
	var ce *control.Error
	if errors.As(err, &ce) {
		fmt.Printf("REFUSED: %s %s\n", ce.Code, ce.Message)
		return
	}
	fmt.Printf("NOT REFUSED: %v\n", err)
}

// TestSIGTERMFinishesTheTap: SIGTERM during a slow tap lets the tap finish
// and actuate, then every output is left inactive and the daemon exits 0;
// nothing acts at start or at shutdown.
func TestSIGTERMFinishesTheTap(t *testing.T) {
	dir := newDir(t, nil)
	in := start(t, dir)
	c := in.client()
	setupOwner(t, c)
	tapDone := make(chan control.Event, 1)
	go func() {
		var ev control.Event
		slow, _ := control.Dial(in.socket())
		defer slow.Close()
		slow.Call(context.Background(), control.VerbSimTap, control.SimPlaceArgs{Phone: "owner", Reader: "door", LatencyMS: 120}, &ev)
		tapDone <- ev
	}()
	time.Sleep(200 * time.Millisecond) // SELECT and AUTH0 are through; AUTH1 is on its way
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	log := in.log()
	// The tap finished and unlocked; the recorder logged exactly one action.
	if n := strings.Count(log, `msg="hal: unlock"`); n != 1 {
		t.Fatalf("%d unlock actions logged, want 1:\n%s", n, log)
	}
	for _, a := range []string{`msg="hal: lock"`, `msg="hal: engine`} {
		if strings.Contains(log, a) {
			t.Fatalf("%s at start or shutdown:\n%s", a, log)
		}
	}
	in = start(t, dir)
	audit := call[[]control.AuditEntry](t, in.client(), control.VerbAudit, control.AuditArgs{Limit: 10})
	last := audit[len(audit)-1].Event
	if last.Type != "tap" || last.Result != "allowed" || !last.Actuated {
		t.Fatalf("the interrupted tap was not finished: %+v", last)
	}
	select {
	case <-tapDone:
	case <-time.After(5 * time.Second):
	}
}

func TestCheckConfig(t *testing.T) {
	dir := newDir(t, func(s string) string {
		return strings.Replace(s, `role = "dashboard"`, `role = "trunk"`, 1) + "\n[extra]\nkey = 1\n"
	})
	out, err := exec.Command(binary, "-config", filepath.Join(dir, "dkvehicled.toml"), "-check-config").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unknown key extra") {
		t.Fatalf("bad config accepted: %v %s", err, out)
	}
	dir = newDir(t, nil)
	out, err = exec.Command(binary, "-config", filepath.Join(dir, "dkvehicled.toml"), "-check-config").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "is valid") {
		t.Fatalf("good config refused: %v %s", err, out)
	}
}

// TestCrashThenRestart: kill -9 in the middle of a tap; the next start acts
// on nothing, the store opens and is consistent, and the next tap works.
func TestCrashThenRestart(t *testing.T) {
	dir := newDir(t, nil)
	in := start(t, dir)
	c := in.client()
	setupOwner(t, c)
	expect(t, tap(t, c, "owner", "door"), "allowed", "unlock", "standard", "")
	go func() {
		slow, err := control.Dial(in.socket())
		if err != nil {
			return
		}
		defer slow.Close()
		var ev control.Event
		slow.Call(context.Background(), control.VerbSimTap, control.SimPlaceArgs{Phone: "owner", Reader: "door", LatencyMS: 100}, &ev)
	}()
	time.Sleep(150 * time.Millisecond)
	in.cmd.Process.Kill()
	<-in.done
	in = start(t, dir)
	c = in.client()
	if strings.Contains(in.log(), `msg="hal: `) {
		t.Fatalf("an output acted at start after a crash:\n%s", in.log())
	}
	keys := call[[]control.Key](t, c, control.VerbKeysList, nil)
	if len(keys) != 1 || keys[0].State != "active" {
		t.Fatalf("keys after the crash %+v", keys)
	}
	// The door state restarts as locked; the fast path still works.
	expect(t, tap(t, c, "owner", "door"), "allowed", "unlock", "fast", "")
}
