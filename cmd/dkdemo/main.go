// Command dkdemo shows dkvehicled working end to end without hardware: it
// starts the real daemon on its simulator in a temporary directory with a
// bench PKI (dkpki init), drives the story of a car key through dkctl (owner
// pairing with a one-time password, a wrong password refused, owner taps,
// fast unlock, engine start,
// sharing, a friend's first use, the friend refused at the engine, revocation,
// the friend refused), prints each step with its outcome and timing, and exits
// 0 only if every step behaved as expected.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type demo struct {
	dkctl  string
	socket string
	out    io.Writer
	failed int
	n      int
}

// event is the part of a tap event the demo checks and prints.
type event struct {
	Type         string  `json:"type"`
	Result       string  `json:"result"`
	Action       string  `json:"action"`
	Path         string  `json:"path"`
	Reason       string  `json:"reason"`
	Detail       string  `json:"detail"`
	KeyID        string  `json:"key_id"`
	FriendlyName string  `json:"friendly_name"`
	Actuated     bool    `json:"actuated"`
	Provisioned  int     `json:"provisioned"`
	FirstUse     bool    `json:"first_use"`
	Total        float64 `json:"total"` // microseconds
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dkdemo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	self, _ := os.Executable()
	binDir := filepath.Dir(self)
	daemonBin := fs.String("dkvehicled", filepath.Join(binDir, "dkvehicled"), "the daemon binary")
	dkctlBin := fs.String("dkctl", filepath.Join(binDir, "dkctl"), "the dkctl binary")
	dkpkiBin := fs.String("dkpki", filepath.Join(binDir, "dkpki"), "the dkpki binary")
	configPath := fs.String("config", "configs/simulator.toml", "the simulator configuration to start from")
	keep := fs.Bool("keep", false, "keep the working directory (store, log) afterwards")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	dir, err := os.MkdirTemp("", "dkdemo-")
	if err != nil {
		fmt.Fprintln(stderr, "dkdemo:", err)
		return 1
	}
	if *keep {
		defer fmt.Fprintln(stdout, "working directory kept:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	cfg, err := os.ReadFile(*configPath)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "dkvehicled.toml"), cfg, 0o600)
	}
	if err == nil {
		err = exec.Command(*daemonBin, "-init-key", filepath.Join(dir, "vehicle.key")).Run()
	}
	if err == nil {
		// The vehicle certificate, the OEM root and the phones' device PKI
		// that pairing needs, where the simulator configuration expects them.
		var out []byte
		if out, err = exec.Command(*dkpkiBin, "init", "-dir", filepath.Join(dir, "pki"), "-vehicle-key", filepath.Join(dir, "vehicle.key")).CombinedOutput(); err != nil {
			err = fmt.Errorf("dkpki init: %v: %s", err, out)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "dkdemo: preparing", dir+":", err)
		return 1
	}
	logFile, err := os.Create(filepath.Join(dir, "dkvehicled.log"))
	if err != nil {
		fmt.Fprintln(stderr, "dkdemo:", err)
		return 1
	}
	defer logFile.Close()
	daemon := exec.Command(*daemonBin, "-config", filepath.Join(dir, "dkvehicled.toml"))
	daemon.Stderr = logFile
	started := time.Now()
	if err := daemon.Start(); err != nil {
		fmt.Fprintln(stderr, "dkdemo: starting dkvehicled:", err)
		return 1
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	d := &demo{dkctl: *dkctlBin, socket: filepath.Join(dir, "control.sock"), out: stdout}
	if err := d.waitReady(exited); err != nil {
		fmt.Fprintln(stderr, "dkdemo:", err)
		daemon.Process.Kill()
		printLog(stderr, logFile.Name())
		return 1
	}
	fmt.Fprintf(stdout, "dkvehicled is up on its simulator (%s to READY), working directory %s\n\n", time.Since(started).Round(time.Millisecond), dir)
	d.story()
	daemon.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			d.failed++
			fmt.Fprintln(stdout, "✗ dkvehicled did not stop cleanly:", err)
		} else {
			fmt.Fprintln(stdout, "\n✓ dkvehicled stopped cleanly on SIGTERM (outputs inactive, store closed)")
		}
	case <-time.After(15 * time.Second):
		daemon.Process.Kill()
		d.failed++
		fmt.Fprintln(stdout, "✗ dkvehicled did not stop within 15 s")
	}
	if d.failed > 0 {
		fmt.Fprintf(stdout, "\n%d of %d steps did not behave as expected; the daemon's log:\n", d.failed, d.n)
		printLog(stdout, logFile.Name())
		return 1
	}
	fmt.Fprintf(stdout, "\nall %d steps behaved as expected\n", d.n)
	return 0
}

func printLog(w io.Writer, path string) {
	b, _ := os.ReadFile(path)
	w.Write(b)
}

func (d *demo) waitReady(exited <-chan error) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := d.ctl("status"); err == nil {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("dkvehicled exited at start: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("dkvehicled not ready within 15 s")
		}
	}
}

// ctl runs one dkctl command with --json and returns its output.
func (d *demo) ctl(args ...string) ([]byte, error) {
	return d.ctlIn("", args...)
}

// ctlIn is ctl with text on dkctl's standard input.
func (d *demo) ctlIn(stdin string, args ...string) ([]byte, error) {
	cmd := exec.Command(d.dkctl, append([]string{"-socket", d.socket, "-json"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("dkctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.Bytes(), nil
}

// do runs a management step that must succeed.
func (d *demo) do(what string, args ...string) []byte {
	return d.doIn(what, "", args...)
}

// doIn is do with text on dkctl's standard input.
func (d *demo) doIn(what, stdin string, args ...string) []byte {
	d.n++
	out, err := d.ctlIn(stdin, args...)
	if err != nil {
		d.failed++
		fmt.Fprintf(d.out, "%2d. ✗ %-52s %v\n", d.n, what, err)
		return nil
	}
	fmt.Fprintf(d.out, "%2d. ✓ %-52s dkctl %s\n", d.n, what, strings.Join(args, " "))
	return out
}

// tap taps a phone on a reader and checks the outcome.
func (d *demo) tap(what, phone, reader, result, action, path, reason string) event {
	d.n++
	var ev event
	out, err := d.ctl("sim", "tap", phone, reader)
	if err == nil {
		err = json.Unmarshal(out, &ev)
	}
	if err != nil {
		d.failed++
		fmt.Fprintf(d.out, "%2d. ✗ %-52s %v\n", d.n, what, err)
		return ev
	}
	ok := ev.Result == result && ev.Action == action && ev.Path == path && ev.Reason == reason && ev.Actuated == (result == "allowed")
	mark := "✓"
	if !ok {
		mark = "✗"
		d.failed++
	}
	outcome := strings.ToUpper(ev.Result) + " " + ev.Action
	if ev.Reason != "" {
		outcome += " (" + ev.Reason + ")"
	}
	fmt.Fprintf(d.out, "%2d. %s %-52s %-36s path %-26s %7.2f ms\n", d.n, mark, what, outcome, ev.Path, ev.Total/1000)
	if !ok {
		fmt.Fprintf(d.out, "       expected %s %s on the %s path, reason %q; detail: %s\n", strings.ToUpper(result), action, path, reason, ev.Detail)
	}
	return ev
}

// pair lays the owner's phone on the dashboard in pairing mode and checks
// the pairing's outcome.
func (d *demo) pair(what, result, reason string) {
	d.n++
	var ev event
	out, err := d.ctl("sim", "tap", "owner", "dashboard")
	if err == nil {
		err = json.Unmarshal(out, &ev)
	}
	if err != nil {
		d.failed++
		fmt.Fprintf(d.out, "%2d. ✗ %-52s %v\n", d.n, what, err)
		return
	}
	ok := ev.Type == "pairing" && ev.Result == result && ev.Reason == reason && !ev.Actuated
	mark := "✓"
	if !ok {
		mark = "✗"
		d.failed++
	}
	outcome := strings.ToUpper(ev.Result)
	if ev.Reason != "" {
		outcome += " (" + ev.Reason + ")"
	}
	fmt.Fprintf(d.out, "%2d. %s %-52s %-36s %-31s %7.2f ms\n", d.n, mark, what, outcome, "", ev.Total/1000)
	if !ok {
		fmt.Fprintf(d.out, "       expected a pairing %s, reason %q; detail: %s\n", strings.ToUpper(result), reason, ev.Detail)
	}
}

func (d *demo) story() {
	const password = "27182818"
	d.do("create the owner's phone", "sim", "phone", "new", "owner")
	d.doIn("the vehicle gets the pairing verifier (7 attempts)", password+"\n", "pairing", "verifier", "--password-stdin")
	d.do("the owner starts pairing mode in the car", "pairing", "start")
	d.do("the owner types a wrong password on the phone", "sim", "pairing-password", "owner", "27182819")
	d.pair("the phone on the dashboard: refused, 1 attempt used", "failed", "confirmation_mismatch")
	d.do("the owner types the right password", "sim", "pairing-password", "owner", password)
	d.pair("the phone on the dashboard: SPAKE2+, key created", "paired", "")
	d.tap("owner taps the door handle", "owner", "door", "allowed", "unlock", "standard", "")
	d.tap("owner taps again: fast transaction", "owner", "door", "allowed", "lock", "fast", "")
	d.tap("owner taps again: fast unlock", "owner", "door", "allowed", "unlock", "fast", "")
	ev := d.tap("owner lays the phone on the dashboard", "owner", "dashboard", "allowed", "engine_start", "standard", "")
	if ev.Provisioned > 0 {
		fmt.Fprintf(d.out, "       (the vehicle provisioned %d slot entries and checked the immobilizer token)\n", ev.Provisioned)
	}
	d.do("create Alice's phone", "sim", "phone", "new", "alice")
	share := d.do("owner shares an access-only key with Alice offline", "sim", "share", "owner", "alice", "--profile", "1", "--name", "Alice")
	var sh struct {
		FriendKey string `json:"friend_key"`
	}
	json.Unmarshal(share, &sh)
	d.tap("Alice's first tap: attestation checked, key stored", "alice", "door", "allowed", "lock", "standard+friend_first_use", "")
	d.tap("Alice taps again: fast transaction", "alice", "door", "allowed", "unlock", "fast", "")
	d.tap("Alice may not start the engine (access only)", "alice", "dashboard", "denied", "engine_start", "standard", "not_permitted")
	if sh.FriendKey == "" {
		d.n++
		d.failed++
		fmt.Fprintf(d.out, "%2d. ✗ revoke Alice's key: the share named no key\n", d.n)
	} else {
		d.do("the vehicle revokes Alice's key", "keys", "revoke", sh.FriendKey[:12])
	}
	d.tap("Alice is refused", "alice", "door", "denied", "lock", "standard", "key_not_valid")
	d.tap("the owner still locks on the fast path", "owner", "door", "allowed", "lock", "fast", "")
}
