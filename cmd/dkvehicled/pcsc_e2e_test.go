//go:build pcsc

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
)

// The PC/SC end-to-end tests run the daemon built with PC/SC against a real
// pcscd with the vsmartcard virtual readers ("Virtual PCD 00 00" is the door,
// "Virtual PCD 00 01" the dashboard), and dkendpoint phones that plug into
// them. They start and stop pcscd themselves, by PID.

func init() { buildTags = "pcsc" }

const pcscdSocket = "/run/pcscd/pcscd.comm"

var (
	endpointOnce sync.Once
	endpointBin  string
)

func dkendpoint(t testing.TB) string {
	endpointOnce.Do(func() {
		endpointBin = filepath.Join(filepath.Dir(binary), "dkendpoint")
		if out, err := exec.Command("go", "build", "-o", endpointBin, "../dkendpoint").CombinedOutput(); err != nil {
			t.Fatalf("building dkendpoint: %v\n%s", err, out)
		}
	})
	return endpointBin
}

// pcscd is a pcscd process owned by the test.
type pcscd struct {
	t   testing.TB
	cmd *exec.Cmd
}

func startPCSCD(t testing.TB) *pcscd {
	t.Helper()
	if _, err := os.Stat(pcscdSocket); err == nil {
		if c, err := dialRaw(pcscdSocket); err == nil {
			c.Close()
			t.Fatal("a pcscd this test did not start is running: stop it first (its PID is in /run/pcscd/pcscd.pid)")
		}
	}
	p := &pcscd{t: t, cmd: exec.Command("pcscd", "-f")}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting pcscd: %v", err)
	}
	t.Cleanup(func() { p.stop(syscall.SIGTERM) })
	p.waitReady()
	return p
}

func (p *pcscd) waitReady() {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := dialRaw(pcscdSocket); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatal("pcscd did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends pcscd by its PID.
func (p *pcscd) stop(sig syscall.Signal) {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(sig)
	p.cmd.Wait()
}

func (p *pcscd) restart() {
	p.stop(syscall.SIGKILL)
	p.cmd = exec.Command("pcscd", "-f")
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.waitReady()
}

// pcscDir is a working directory with a configuration for the two virtual
// readers, no simulator, and direct enrolment allowed (the bench tool).
func pcscDir(t testing.TB) string {
	return newDir(t, func(s string) string {
		s = strings.Replace(s, `[[readers]]
name = "door"
role = "door"
backend = "sim"

[[readers]]
name = "dashboard"
role = "dashboard"
backend = "sim"`, `[[readers]]
name = "door"
role = "door"
backend = "pcsc"
[readers.pcsc]
reader = "Virtual PCD 00 00"

[[readers]]
name = "dashboard"
role = "dashboard"
backend = "pcsc"
[readers.pcsc]
reader = "Virtual PCD 00 01"`, 1)
		s = strings.Replace(s, "[simulator]\nenabled = true", "[simulator]\nenabled = false\n\n[bench]\ndirect_enrolment = true", 1)
		s = regexp.MustCompile(`(?m)^device_pki = .*$`).ReplaceAllString(s, "")
		return s
	})
}

// phone is a dkendpoint state file.
type phone struct {
	t     testing.TB
	state string
	c     *control.Client // the daemon, to wait for its readers to be free
}

type tapReport struct {
	Commands      int     `json:"commands"`
	DetectedMS    float64 `json:"detected_ms"`
	TransactionMS float64 `json:"transaction_ms"`
	ControlFlow   string  `json:"control_flow"`
	Dropped       bool    `json:"dropped"`
}

func (p *phone) run(args ...string) string {
	p.t.Helper()
	out, err := exec.Command(dkendpoint(p.t), args...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("dkendpoint %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// tap lays the phone on vpcd reader n once and returns what it saw. It
// first waits until the daemon saw the previous card leave that reader: vpcd
// takes a new card only after pcscd's presence poll noticed the old one gone.
func (p *phone) tap(n int, extra ...string) tapReport {
	p.t.Helper()
	if p.c != nil {
		waitAbsent(p.t, p.c, n)
	}
	out := p.run(append([]string{"tap", "-state", p.state, "-reader", fmt.Sprint(n), "-json"}, extra...)...)
	var r tapReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		p.t.Fatalf("tap report %q: %v", out, err)
	}
	return r
}

// newPhone makes a phone with the bench device PKI, so it can be paired.
func newPhone(t testing.TB, c *control.Client, dir, name string) *phone {
	p := &phone{t: t, c: c, state: filepath.Join(dir, name+".json")}
	p.run("new", "-state", p.state, "-pki", filepath.Join(dir, "pki"))
	return p
}

// pairOwner pairs the phone as the owner on the dashboard reader (vpcd
// reader 1), as the owner would: the vehicle gets a verifier and enters
// pairing mode, the owner types the password on the phone and lays it down.
func pairOwner(t testing.TB, c *control.Client, p *phone) control.Event {
	t.Helper()
	call[control.PairingStatus](t, c, control.VerbPairingVerifier, control.VerifierArgs{Password: ownerPassword})
	call[control.PairingStatus](t, c, control.VerbPairingStart, control.PairingStartArgs{})
	p.run("password", "-state", p.state, ownerPassword)
	seq := lastSeq(t, c)
	r := p.tap(1)
	ev := lastEvent(t, c, "pairing", "dashboard", seq)
	if ev.Result != "paired" || ev.KeyID == "" || r.ControlFlow != "803c0100" {
		t.Fatalf("pairing over pcscd: event %+v, phone saw %+v", ev, r)
	}
	if !strings.Contains(p.run("show", "-state", p.state), ev.KeyID[:12]) {
		t.Fatalf("the phone does not hold the paired key %s", ev.KeyID)
	}
	return ev
}

// enrolOwner enrols the phone as owner through the daemon's bench verb.
func enrolOwner(t testing.TB, c *control.Client, p *phone) control.Enrolment {
	vi := call[control.VehicleInfo](t, c, control.VerbVehicle, nil)
	pk := strings.TrimSpace(p.run("key", "-state", p.state, "-vehicle", vi.VehicleIdentifier))
	en := call[control.Enrolment](t, c, control.VerbEnrolOwner, control.EnrolArgs{PublicKey: pk, Name: "owner"})
	b, _ := json.Marshal(en)
	file := p.state + ".enrolment"
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p.run("enrol", "-state", p.state, "-enrolment", file)
	return en
}

// lastTap waits for the daemon's event of the tap at reader after seq.
func lastTap(t testing.TB, c *control.Client, reader string, after uint64) control.Event {
	t.Helper()
	return lastEvent(t, c, "tap", reader, after)
}

// lastEvent waits for the daemon's event of type typ at reader after seq.
func lastEvent(t testing.TB, c *control.Client, typ, reader string, after uint64) control.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		audit := call[[]control.AuditEntry](t, c, control.VerbAudit, control.AuditArgs{Limit: 20})
		for i := len(audit) - 1; i >= 0; i-- {
			if e := audit[i].Event; e.Type == typ && e.Reader == reader && e.Seq > after {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event at %s after %d", typ, reader, after)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lastSeq(t testing.TB, c *control.Client) uint64 {
	audit := call[[]control.AuditEntry](t, c, control.VerbAudit, control.AuditArgs{Limit: 1})
	if len(audit) == 0 {
		return 0
	}
	return audit[0].Event.Seq
}

// waitAbsent waits until no card lies on reader n, as the daemon sees it.
func waitAbsent(t testing.TB, c *control.Client, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := call[control.Status](t, c, control.VerbStatus, nil)
		if !st.Readers[n].CardPresent {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reader %s still holds a card", st.Readers[n].Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReaders waits until every reader's health is ok.
func waitReaders(t testing.TB, c *control.Client, ok bool) control.Status {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := call[control.Status](t, c, control.VerbStatus, nil)
		all := true
		for _, r := range st.Readers {
			all = all && r.OK == ok
		}
		if all {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("readers not ok=%v: %+v", ok, st.Readers)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tapAndCheck taps a phone and checks both what the phone saw and the
// daemon's event.
func tapAndCheck(t testing.TB, c *control.Client, p *phone, n int, result, action, path, reason string) (tapReport, control.Event) {
	t.Helper()
	reader := []string{"door", "dashboard"}[n]
	seq := lastSeq(t, c)
	r := p.tap(n)
	ev := lastTap(t, c, reader, seq)
	expect(t, ev, result, action, path, reason)
	wantCF := "803c0100"
	if result != "allowed" {
		wantCF = ""
	}
	if (wantCF != "" && r.ControlFlow != wantCF) || (wantCF == "" && r.ControlFlow == "803c0100") {
		t.Fatalf("phone saw CONTROL FLOW %q for a %s tap", r.ControlFlow, result)
	}
	return r, ev
}

func TestPCSCStory(t *testing.T) {
	pd := startPCSCD(t)
	dir := pcscDir(t)
	in := start(t, dir)
	c := in.client()
	waitReaders(t, c, true)

	owner := newPhone(t, c, dir, "owner")
	pairOwner(t, c, owner)
	tapAndCheck(t, c, owner, 0, "allowed", "unlock", "standard", "")
	tapAndCheck(t, c, owner, 0, "allowed", "lock", "fast", "")
	_, ev := tapAndCheck(t, c, owner, 1, "allowed", "engine_start", "standard", "")
	if ev.Provisioned != 7 {
		t.Fatalf("owner's first dashboard tap provisioned %d entries", ev.Provisioned)
	}

	friend := &phone{t: t, c: c, state: filepath.Join(dir, "friend.json")}
	owner.run("share", "-from", owner.state, "-to", friend.state, "-profile", "2", "-name", "Alice")
	_, ev = tapAndCheck(t, c, friend, 0, "allowed", "unlock", "standard+friend_first_use", "")
	tapAndCheck(t, c, friend, 1, "allowed", "engine_start", "standard", "") // profile 2: drive, token checked
	call[control.Key](t, c, control.VerbKeysRevoke, control.KeyArgs{KeyID: ev.KeyID})
	tapAndCheck(t, c, friend, 0, "denied", "lock", "standard", "key_not_valid")

	// Pulled away mid-transaction: nothing actuated, the next tap is fine.
	seq := lastSeq(t, c)
	r := owner.tap(0, "-drop-after", "1") // gone before AUTH0: before any decision
	if !r.Dropped || r.ControlFlow != "" {
		t.Fatalf("drop report %+v", r)
	}
	ev = lastTap(t, c, "door", seq)
	if ev.Result != "error" || ev.Actuated {
		t.Fatalf("pulled-away tap: %+v", ev)
	}
	// vpcd takes a card that connects right after one vanished mid-APDU only
	// once pcscd's presence poll (every 400 ms) noticed the vanished one.
	time.Sleep(1500 * time.Millisecond)
	tapAndCheck(t, c, owner, 0, "allowed", "lock", "fast", "")

	// pcscd killed and restarted: the readers go unhealthy, come back, and the
	// next tap works.
	pd.stop(syscall.SIGKILL)
	waitReaders(t, c, false)
	back := time.Now()
	pd.restart()
	st := waitReaders(t, c, true)
	t.Logf("readers healthy again %v after pcscd came back", time.Since(back).Round(time.Millisecond))
	for _, r := range st.Readers {
		if r.Errors == 0 || r.Recoveries == 0 {
			t.Errorf("reader %s: errors %d recoveries %d after the restart", r.Name, r.Errors, r.Recoveries)
		}
	}
	tapAndCheck(t, c, owner, 0, "allowed", "unlock", "fast", "")
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestPCSCDirectEnrolment: the bench tool that skips pairing (dkctl enrol
// owner, dkendpoint key and enrol) still leaves an owner who can tap, and is
// refused when the configuration does not allow it.
func TestPCSCDirectEnrolment(t *testing.T) {
	startPCSCD(t)
	dir := pcscDir(t)
	in := start(t, dir)
	c := in.client()
	waitReaders(t, c, true)
	owner := newPhone(t, c, dir, "owner")
	en := enrolOwner(t, c, owner)
	_, ev := tapAndCheck(t, c, owner, 0, "allowed", "unlock", "standard", "")
	if ev.KeyID != en.KeyID {
		t.Fatalf("tap by %s, enrolled %s", ev.KeyID, en.KeyID)
	}
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	cfg := filepath.Join(dir, "dkvehicled.toml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "direct_enrolment = true", "direct_enrolment = false", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	in = start(t, dir)
	c = in.client()
	if e := callErr(c, control.VerbEnrolOwner, control.EnrolArgs{PublicKey: en.VehiclePublicKey}); e == nil || e.Code != control.CodeDisabled {
		t.Fatalf("direct enrolment while off: %v", e)
	}
}

// BenchmarkPCSCTap measures, over pcscd and vpcd, the time from the phone
// arriving to the vehicle's decision, as the phone sees it: detection (until
// the first APDU; pcscd polls its readers every 400 ms) and the transaction
// (first APDU to CONTROL FLOW). Run with -benchtime 50x; it reports medians.
//
//	go test -tags pcsc -run '^$' -bench PCSCTap -benchtime 50x ./cmd/dkvehicled/
func BenchmarkPCSCTap(b *testing.B) {
	startPCSCD(b)
	dir := pcscDir(b)
	in := start(b, dir)
	c := in.client()
	waitReaders(b, c, true)
	owner := newPhone(b, c, dir, "owner")
	pairOwner(b, c, owner)
	owner.tap(1) // provisioning and Kpersistent
	for _, bc := range []struct {
		name   string
		reader int
	}{{"fast_door", 0}, {"standard_dashboard", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			var det, txn, total []float64
			cmds := 0
			for b.Loop() {
				r := owner.tap(bc.reader)
				if r.ControlFlow != "803c0100" {
					b.Fatalf("tap refused: %+v", r)
				}
				det, txn, total = append(det, r.DetectedMS), append(txn, r.TransactionMS), append(total, r.DetectedMS+r.TransactionMS)
				cmds = r.Commands
			}
			reportMS(b, "transaction", txn)
			reportMS(b, "detection", det)
			reportMS(b, "present-to-decision", total)
			b.ReportMetric(float64(cmds), "apdus")
		})
	}
	in.stop()
}
