//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/internal/pki"
	"github.com/dkvehicled/dkvehicled/internal/pty"
	"github.com/dkvehicled/dkvehicled/reader/pn532/pn532sim"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// The PN532 end-to-end tests run the real daemon with its door (or
// dashboard) reader on the PN532 driver over HSU (UART). The serial port is the slave side of a
// pseudo-terminal; the test serves a simulated PN532 (pn532sim) on the
// master side, so every byte between the daemon and the chip crosses a real
// tty, through go.bug.st/serial, exactly as on /dev/serial0 of a bench rig.

// pn532ECP is the ECP frame the door reader is configured with (6A 02, C3:
// express, TCI length 3; access; subtype 01; TCI 01 00 01: a made-up
// manufacturer 000, location 1).
const pn532ECP = "6a02c30201010001"

// pn532Serve serves chip on the pty master until the test ends: what the
// daemon writes to the slave goes to the chip's UART, what the chip sends
// goes back to the master.
func pn532Serve(t testing.TB, chip *pn532sim.Chip, master *os.File) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	// Daemon to chip. Close interrupts the blocked Read (the master is on
	// Go's poller). EIO means no slave descriptor is open: the test keeps
	// one, so it is only a hang-up on the way out.
	go func() {
		defer wg.Done()
		u := chip.UART()
		buf := make([]byte, 512)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				u.Write(buf[:n])
			}
			switch {
			case err == nil:
			case errors.Is(err, syscall.EIO) && ctx.Err() == nil:
				time.Sleep(10 * time.Millisecond)
			default:
				return
			}
		}
	}()
	// Chip to daemon. The fake UART's Read returns 0, nil when nothing came
	// within its read timeout, which bounds how long a stop waits.
	go func() {
		defer wg.Done()
		u := chip.UART()
		u.SetReadTimeout(20 * time.Millisecond)
		buf := make([]byte, 512)
		for ctx.Err() == nil {
			n, _ := u.Read(buf)
			if n == 0 {
				continue
			}
			if _, err := master.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		master.Close()
		wg.Wait()
	})
}

// pn532Dir is a working directory whose reader (door or dashboard) is a
// PN532 on the serial device dev, the other staying a simulated reader.
func pn532Dir(t testing.TB, dev, reader string) string {
	return newDir(t, func(s string) string { return pn532Reader(t, s, reader, dev, "50ms") })
}

// pn532Reader replaces the simulated reader of that name in the simulator
// configuration s with a PN532 over UART on dev.
func pn532Reader(t testing.TB, s, reader, dev, poll string) string {
	block := "[[readers]]\nname = \"" + reader + "\"\nrole = \"" + reader + "\"\nbackend = \"sim\"\n"
	if strings.Count(s, block) != 1 {
		t.Fatalf("configs/simulator.toml has no %s reader block to replace:\n%s", reader, s)
	}
	return strings.Replace(s, block, `[[readers]]
name = "`+reader+`"
role = "`+reader+`"
backend = "pn532"
[readers.pn532]
bus = "uart"
device = "`+dev+`"
max_retries = 1
poll_interval = "`+poll+`"
ecp = "`+pn532ECP+`"
`, 1)
}

// pn532TakePhone loads the simulated phone name from the daemon's phones file and
// deletes it there, so that the phone exists only in the test from now on.
func pn532TakePhone(t testing.TB, file, name string) *endpoint.Phone {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var saved map[string]json.RawMessage
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	raw, ok := saved[name]
	if !ok {
		t.Fatalf("%s has no phone %q:\n%s", file, name, b)
	}
	p, err := endpoint.Load(raw, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	delete(saved, name)
	if b, err = json.Marshal(saved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pn532Taps follows the daemon's event stream and delivers the taps and
// pairings at reader. It returns once the stream is open (it has delivered
// the event of a switch flip), so no tap after that is missed.
func pn532Taps(t testing.TB, in *instance, reader string) <-chan control.Event {
	taps := make(chan control.Event, 16)
	opened := make(chan struct{})
	var once sync.Once
	ctx, cancel := context.WithCancel(context.Background())
	stream := in.client()
	done := make(chan struct{})
	go func() {
		defer close(done)
		stream.Events(ctx, func(ev control.Event, dropped uint64) error {
			once.Do(func() { close(opened) })
			if (ev.Type == "tap" || ev.Type == "pairing") && ev.Reader == reader {
				select {
				case taps <- ev:
				case <-ctx.Done():
				}
			}
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	c := in.client()
	for i := 0; ; i++ {
		call[control.Status](t, c, control.VerbDigitalKey, control.SwitchArgs{Enabled: true})
		select {
		case <-opened:
			return taps
		case <-time.After(20 * time.Millisecond):
		}
		if i == 250 {
			t.Fatal("the event stream delivers nothing")
		}
	}
}

func pn532NextTap(t testing.TB, taps <-chan control.Event, in *instance) control.Event {
	t.Helper()
	select {
	case ev := <-taps:
		return ev
	case <-time.After(15 * time.Second):
		t.Fatalf("no tap within 15 s\n%s", in.log())
	}
	return control.Event{}
}

// pn532WaitDoor polls the status until the door reader satisfies cond.
func pn532WaitDoor(t testing.TB, c *control.Client, what string, cond func(control.Reader) bool) control.Reader {
	t.Helper()
	var last control.Reader
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, r := range call[control.Status](t, c, control.VerbStatus, nil).Readers {
			if r.Name == "door" {
				last = r
			}
		}
		if cond(last) {
			return last
		}
	}
	t.Fatalf("door reader never %s: %+v", what, last)
	return last
}

// pn532Eventually waits until cond holds (the bound only stops a broken
// test; it is not a timing assertion).
func pn532Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
	}
}

// pn532Remove takes the phone out of the field and waits until the driver
// has noticed: the daemon's reader loop releases the target (InRelease)
// once Diagnose says it is gone.
func pn532Remove(t testing.TB, chip *pn532sim.Chip, phone *endpoint.Phone) {
	t.Helper()
	releases := func() int { return bytes.Count(chip.Commands(), []byte{0x52}) }
	before := releases()
	chip.Remove()
	phone.Reset() // the field went away: the phone's session ends
	pn532Eventually(t, "the driver releases the removed phone (InRelease)", func() bool { return releases() > before })
}

// TestPN532OverUART: a phone provisioned on the simulator is taken out of the
// daemon and laid on a simulated PN532 behind a pseudo-terminal; the daemon's
// door reader (the PN532 driver over HSU, through go.bug.st/serial) runs the
// whole tap: fast-path unlock, removal noticed, fast-path lock; garbled
// frames absorbed; a chip that stops answering shows in the status and the
// metrics and recovers on its own; the ECP frame is the configured one.
func TestPN532OverUART(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	chip := pn532sim.New()
	pn532Serve(t, chip, master)
	dir := pn532Dir(t, slave.Name(), "door")

	// First run: the owner's phone is made, enrolled and provisioned on the
	// simulated dashboard reader (standard transaction: Kpersistent on both
	// sides, immobilizer token delivered).
	in := start(t, dir)
	c := in.client()
	owner := setupOwner(t, c)
	expect(t, tap(t, c, "owner", "dashboard"), "allowed", "engine_start", "standard", "")
	if keys := call[[]control.Key](t, c, control.VerbKeysList, nil); len(keys) != 1 || !keys[0].HasKpersistent {
		t.Fatalf("keys after the dashboard tap %+v", keys)
	}
	pn532WaitDoor(t, c, "came up on the first run", func(r control.Reader) bool { return r.OK })
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM\n%s", code, in.log())
	}

	// The phone leaves the daemon's simulator for the test's hands.
	phone := pn532TakePhone(t, filepath.Join(dir, "sim-phones.json"), "owner")
	if k := phone.Keys(); len(k) != 1 || k[0].KeyID().String() != owner.KeyID {
		t.Fatalf("phone keys %v, want %s", k, owner.KeyID)
	}

	// Second run: the door is the PN532.
	in = start(t, dir)
	c = in.client()
	if phones := call[[]control.SimPhone](t, c, control.VerbSimPhones, nil); len(phones) != 0 {
		t.Fatalf("the daemon still holds simulated phones %+v", phones)
	}
	taps := pn532Taps(t, in, "door")
	r := pn532WaitDoor(t, c, "became healthy", func(r control.Reader) bool { return r.OK })
	if r.Backend != "pn532" || r.Firmware != "PN532 v1.6" || !r.ECP || r.Errors != 0 || r.Detail != "ready" {
		t.Fatalf("door reader %+v", r)
	}

	// A tap through the PN532: fast path, since the dashboard tap left a
	// Kpersistent. The car starts locked.
	chip.Place(phone.Transceive)
	ev := pn532NextTap(t, taps, in)
	expect(t, ev, "allowed", "unlock", "fast", "")
	if ev.KeyID != owner.KeyID || ev.Role != "door" {
		t.Fatalf("tap event %+v", ev)
	}
	pn532Remove(t, chip, phone)

	// Laid down again: a new tap, which the driver can only see after it
	// noticed the removal.
	chip.Place(phone.Transceive)
	expect(t, pn532NextTap(t, taps, in), "allowed", "lock", "fast", "")
	pn532Remove(t, chip, phone)

	// Garbled frames (a wrong checksum, a NACK) are asked for or sent again:
	// no reader error.
	errs := pn532WaitDoor(t, c, "stayed healthy", func(r control.Reader) bool { return r.OK }).Errors
	for _, f := range []pn532sim.Fault{pn532sim.BadChecksum, pn532sim.NACK} {
		answered := len(chip.Commands())
		chip.Fail(f)
		pn532Eventually(t, "the chip answers commands after the fault", func() bool { return len(chip.Commands()) > answered+3 })
	}
	if r := pn532WaitDoor(t, c, "stayed healthy", func(r control.Reader) bool { return r.OK }); r.Errors != errs {
		t.Fatalf("garbled frames counted as reader errors: %+v", r)
	}

	// The chip stops answering: the reader turns unhealthy and counts errors,
	// in the status and in the metrics.
	chip.Fail(pn532sim.Silent)
	r = pn532WaitDoor(t, c, "turned unhealthy", func(r control.Reader) bool { return !r.OK && r.Errors > errs })
	if !strings.Contains(r.Detail, "timeout") {
		t.Errorf("unhealthy reader detail %q", r.Detail)
	}
	m := call[control.Metrics](t, c, control.VerbMetrics, nil)
	if !strings.Contains(m.Text, `dkvehicled_reader_up{reader="door",backend="pn532"} 0`) {
		t.Errorf("metrics while the chip is silent:\n%s", m.Text)
	}
	// It answers again: the driver initialises it again by itself.
	chip.Fail(pn532sim.Healthy)
	r = pn532WaitDoor(t, c, "recovered", func(r control.Reader) bool { return r.OK && r.Recoveries > 0 })
	if r.Firmware != "PN532 v1.6" || r.Detail != "ready" {
		t.Fatalf("recovered reader %+v", r)
	}
	m = call[control.Metrics](t, c, control.VerbMetrics, nil)
	if !strings.Contains(m.Text, `dkvehicled_reader_up{reader="door",backend="pn532"} 1`) {
		t.Errorf("metrics after the recovery:\n%s", m.Text)
	}
	chip.Place(phone.Transceive)
	expect(t, pn532NextTap(t, taps, in), "allowed", "unlock", "fast", "")
	pn532Remove(t, chip, phone)

	// The ECP frame went out before the polls, exactly as configured.
	want, _ := hex.DecodeString(pn532ECP)
	thru := chip.Thru()
	if len(thru) == 0 {
		t.Fatal("no ECP frame sent")
	}
	for _, f := range thru {
		if !bytes.Equal(f, want) {
			t.Fatalf("ECP frame % X, want % X", f, want)
		}
	}

	// The audit log has the same story.
	var door []control.Event
	for _, a := range call[[]control.AuditEntry](t, c, control.VerbAudit, control.AuditArgs{Limit: 100}) {
		if a.Event.Type == "tap" && a.Event.Reader == "door" {
			door = append(door, a.Event)
		}
	}
	if len(door) != 3 || door[0].Action != "unlock" || door[1].Action != "lock" || door[2].Action != "unlock" {
		t.Fatalf("door taps in the audit log %+v", door)
	}
	for _, ev := range door {
		if ev.Result != "allowed" || ev.Path != "fast" || !ev.Actuated || ev.KeyID != owner.KeyID {
			t.Fatalf("door tap in the audit log %+v", ev)
		}
	}
	if st := call[control.Status](t, c, control.VerbStatus, nil); st.Actuators.Lock != "unlocked" {
		t.Fatalf("actuators %+v", st.Actuators)
	}
	if strings.Contains(in.log(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", in.log())
	}
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM\n%s", code, in.log())
	}
}

// TestPN532Pairing: the owner pairs through the PN532 on the dashboard
// (SPAKE2+, the long WRITE DATA and the chained GET DATA answer crossing the
// chip's frames), then the first dashboard transaction provisions the slots
// and starts the engine, through the same chip.
func TestPN532Pairing(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	chip := pn532sim.New()
	pn532Serve(t, chip, master)
	dir := pn532Dir(t, slave.Name(), "dashboard")
	in := start(t, dir)
	c := in.client()

	bench, err := pki.LoadBench(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	phone := endpoint.New(wire.CCC, wire.CCC.Versions, wire.DefaultLayout, rand.Reader)
	phone.SetDevicePKI(bench.DevicePKI(rand.Reader))
	phone.SetPairingPassword(ownerPassword)

	taps := pn532Taps(t, in, "dashboard")
	call[control.PairingStatus](t, c, control.VerbPairingVerifier, control.VerifierArgs{Password: ownerPassword})
	call[control.PairingStatus](t, c, control.VerbPairingStart, control.PairingStartArgs{})
	chip.Place(phone.Transceive)
	ev := pn532NextTap(t, taps, in)
	if ev.Type != "pairing" || ev.Result != "paired" || ev.Actuated {
		t.Fatalf("pairing through the PN532: %+v", ev)
	}
	if k := phone.Keys(); len(k) != 1 || k[0].KeyID().String() != ev.KeyID {
		t.Fatalf("phone keys %v, vehicle paired %s", k, ev.KeyID)
	}
	pn532Remove(t, chip, phone)

	chip.Place(phone.Transceive)
	ev = pn532NextTap(t, taps, in)
	expect(t, ev, "allowed", "engine_start", "standard", "")
	if ev.Provisioned != 7 {
		t.Fatalf("first dashboard transaction provisioned %d entries", ev.Provisioned)
	}
	pn532Remove(t, chip, phone)
	if strings.Contains(in.log(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", in.log())
	}
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM\n%s", code, in.log())
	}
}
