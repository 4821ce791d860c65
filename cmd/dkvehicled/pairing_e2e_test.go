package main

import (
	"strings"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
)

// The owner pairing end to end on the simulator: the real daemon, its
// control socket and store, simulated phones with the bench device PKI.

func pairingStatus(t *testing.T, c *control.Client) control.PairingStatus {
	t.Helper()
	return call[control.PairingStatus](t, c, control.VerbPairingStatus, nil)
}

func expectPairing(t *testing.T, ev control.Event, result, reason string) {
	t.Helper()
	if ev.Type != "pairing" || ev.Result != result || ev.Reason != reason || ev.Actuated {
		t.Fatalf("pairing at %s: got %s %s reason %q (%s); want a pairing %s reason %q",
			ev.Reader, ev.Type, ev.Result, ev.Reason, ev.Detail, result, reason)
	}
}

func noOwner(t *testing.T, c *control.Client) {
	t.Helper()
	st := call[control.Status](t, c, control.VerbStatus, nil)
	if st.Store.Owner != "" || st.Store.Endpoints != 0 {
		t.Fatalf("a key was stored: %+v", st.Store)
	}
}

// TestPairingAttempts: a wrong password costs an attempt and stores nothing;
// the count survives a restart (which ends pairing mode); the 8th attempt is
// refused with OP CONTROL FLOW 0D; a new verifier gives 7 again.
func TestPairingAttempts(t *testing.T) {
	dir := newDir(t, nil)
	in := start(t, dir)
	c := in.client()

	if st := pairingStatus(t, c); !st.Available || st.Mode || st.Verifier {
		t.Fatalf("fresh vehicle: %+v", st)
	}
	if e := callErr(c, control.VerbPairingStart, control.PairingStartArgs{}); e == nil || e.Code != control.CodeNotPermitted {
		t.Fatalf("pairing mode without a verifier: %v", e)
	}
	for _, bad := range []control.VerifierArgs{{}, {Password: "1234567"}, {Password: "abcdefgh"}, {File: "{}"},
		{File: `{"w0":"00"}`}, {Password: ownerPassword, File: "{}"}} {
		if e := callErr(c, control.VerbPairingVerifier, bad); e == nil || e.Code != control.CodeBadRequest {
			t.Fatalf("verifier %+v: %v", bad, e)
		}
	}
	call[control.SimPhone](t, c, control.VerbSimNewPhone, control.SimPhoneArgs{Phone: "owner"})
	expectPairing(t, pairPhone(t, c, "owner", ownerPassword, "00000000"), "failed", "confirmation_mismatch")
	if st := pairingStatus(t, c); !st.Mode || st.AttemptsLeft != 6 {
		t.Fatalf("after a wrong password: %+v", st)
	}
	noOwner(t, c)

	// Only the dashboard pairs: at the door, the same phone gets an
	// ordinary transaction (it has no key).
	if ev := tap(t, c, "owner", "door"); ev.Type != "tap" || ev.Result == "allowed" {
		t.Fatalf("door tap in pairing mode: %+v", ev)
	}
	// A phone not ready for pairing gets an ordinary transaction at the
	// dashboard, and costs no attempt.
	call[control.SimPhone](t, c, control.VerbSimNewPhone, control.SimPhoneArgs{Phone: "passenger"})
	if ev := tap(t, c, "passenger", "dashboard"); ev.Type != "tap" || ev.Actuated || !strings.Contains(ev.Detail, "not ready for pairing") {
		t.Fatalf("dashboard tap of a phone not ready for pairing: %+v", ev)
	}
	if st := pairingStatus(t, c); st.AttemptsLeft != 6 {
		t.Fatalf("attempts after a phone not ready for pairing: %+v", st)
	}

	// The count is in the store; pairing mode is not.
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	in = start(t, dir)
	c = in.client()
	if st := call[control.Status](t, c, control.VerbStatus, nil).Pairing; st.Mode || !st.Verifier || st.AttemptsLeft != 6 {
		t.Fatalf("after a restart: %+v", st)
	}
	// Out of pairing mode, a ready phone at the dashboard does not pair.
	if ev := tap(t, c, "owner", "dashboard"); ev.Type != "tap" {
		t.Fatalf("dashboard tap out of pairing mode: %+v", ev)
	}
	call[control.PairingStatus](t, c, control.VerbPairingStart, control.PairingStartArgs{})
	for left := 5; left >= 0; left-- {
		expectPairing(t, tap(t, c, "owner", "dashboard"), "failed", "confirmation_mismatch")
		if st := pairingStatus(t, c); st.AttemptsLeft != left {
			t.Fatalf("attempts left %d, want %d", st.AttemptsLeft, left)
		}
	}
	// The 8th attempt: refused before SPAKE2+, even with the right password.
	call[control.SimPhone](t, c, control.VerbSimPassword, control.SimPasswordArgs{Phone: "owner", Password: ownerPassword})
	ev := tap(t, c, "owner", "dashboard")
	expectPairing(t, ev, "failed", "no_verifier")
	if !strings.Contains(ev.Detail, "no pairing attempts left") {
		t.Fatalf("8th attempt detail %q", ev.Detail)
	}
	noOwner(t, c)
	call[control.PairingStatus](t, c, control.VerbPairingCancel, nil)
	if e := callErr(c, control.VerbPairingStart, control.PairingStartArgs{}); e == nil || e.Code != control.CodeNotPermitted {
		t.Fatalf("pairing mode with no attempts left: %v", e)
	}

	// A new verifier: 7 attempts, and the right password pairs.
	ev = pairPhone(t, c, "owner", ownerPassword, ownerPassword)
	expectPairing(t, ev, "paired", "")
	st := call[control.Status](t, c, control.VerbStatus, nil)
	if st.Pairing.Mode || st.Pairing.Verifier || st.Store.Owner != ev.KeyID {
		t.Fatalf("after pairing: %+v %+v", st.Pairing, st.Store)
	}
	// The phone's first dashboard transaction provisions the slots and
	// checks the owner's immobilizer token.
	ev = tap(t, c, "owner", "dashboard")
	expect(t, ev, "allowed", "engine_start", "standard", "")
	if ev.Provisioned != 7 {
		t.Fatalf("first owner transaction provisioned %d entries", ev.Provisioned)
	}
	if strings.Contains(in.log(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", in.log())
	}
}

// TestPairingPulledAway: a phone pulled away at each command of a pairing.
// Before GET DATA's answer nothing is stored (the attempt is spent); pulled
// before OP CONTROL FLOW, the vehicle has stored the owner and says the phone
// may lack the key; the owner pairs again with a new verifier, which replaces
// that owner.
func TestPairingPulledAway(t *testing.T) {
	dir := newDir(t, nil)
	in := start(t, dir)
	c := in.client()
	call[control.SimPhone](t, c, control.VerbSimNewPhone, control.SimPhoneArgs{Phone: "owner"})
	call[control.PairingStatus](t, c, control.VerbPairingVerifier, control.VerifierArgs{Password: ownerPassword})
	call[control.PairingStatus](t, c, control.VerbPairingStart, control.PairingStartArgs{})
	call[control.SimPhone](t, c, control.VerbSimPassword, control.SimPasswordArgs{Phone: "owner", Password: ownerPassword})

	// Commands: SELECT, SPAKE2+ REQUEST, SPAKE2+ VERIFY, WRITE DATA, GET
	// DATA (and GET RESPONSE for the rest of its long answer), OP CONTROL
	// FLOW. The attempt is counted before SPAKE2+ REQUEST.
	attempts := 7
	var ev control.Event
	for drop := 0; ; drop++ {
		if drop == 20 {
			t.Fatal("pairing never completed")
		}
		ev = call[control.Event](t, c, control.VerbSimTap, control.SimPlaceArgs{Phone: "owner", Reader: "dashboard", DropAt: &drop})
		if ev.Result == "paired" {
			if drop < 5 {
				t.Fatalf("paired with the phone pulled at command %d", drop)
			}
			break
		}
		if drop > 0 {
			attempts-- // gone after the attempt was counted
		}
		expectPairing(t, ev, "error", "")
		noOwner(t, c)
		if st := pairingStatus(t, c); !st.Mode || st.AttemptsLeft != attempts {
			t.Fatalf("pulled at command %d: %+v, want %d attempts left", drop, st, attempts)
		}
		if attempts == 0 {
			call[control.PairingStatus](t, c, control.VerbPairingVerifier, control.VerifierArgs{Password: ownerPassword})
			attempts = 7
		}
	}
	// Pulled as OP CONTROL FLOW went out: the owner is stored, the phone
	// never installed its key.
	expectPairing(t, ev, "paired", "")
	if !strings.Contains(ev.Detail, "did not reach the phone") {
		t.Fatalf("pulled before OP CONTROL FLOW: detail %q", ev.Detail)
	}
	orphan := ev.KeyID
	phones := call[[]control.SimPhone](t, c, control.VerbSimPhones, nil)
	if len(phones) != 1 || len(phones[0].Keys) != 0 {
		t.Fatalf("the phone installed a key without OP CONTROL FLOW: %+v", phones)
	}
	// The owner pairs again: a new owner key, the orphan terminated.
	ev = pairPhone(t, c, "owner", ownerPassword, ownerPassword)
	expectPairing(t, ev, "paired", "")
	if ev.KeyID == orphan || ev.Detail != "" {
		t.Fatalf("second pairing %+v", ev)
	}
	keys := call[[]control.Key](t, c, control.VerbKeysList, nil)
	states := map[string]string{}
	for _, k := range keys {
		states[k.KeyID] = k.State
	}
	if len(keys) != 2 || states[orphan] != "terminated" || states[ev.KeyID] != "active" {
		t.Fatalf("keys after the owner change %+v", keys)
	}
	expect(t, tap(t, c, "owner", "door"), "allowed", "unlock", "standard", "")
}

// TestOwnerChangeKeepsFriends: a second owner pairing (the car is sold)
// terminates the first owner's key and revokes its unbound slots; a friend
// already bound keeps working.
func TestOwnerChangeKeepsFriends(t *testing.T) {
	dir := newDir(t, nil)
	in := start(t, dir)
	c := in.client()
	first := setupOwner(t, c)
	expect(t, tap(t, c, "owner", "dashboard"), "allowed", "engine_start", "standard", "")
	call[control.SimPhone](t, c, control.VerbSimNewPhone, control.SimPhoneArgs{Phone: "alice"})
	sh := call[control.SimShare](t, c, control.VerbSimShare, control.SimShareArgs{From: "owner", To: "alice", Profile: 2, Name: "Alice"})
	expect(t, tap(t, c, "alice", "door"), "allowed", "unlock", "standard+friend_first_use", "")

	call[control.SimPhone](t, c, control.VerbSimNewPhone, control.SimPhoneArgs{Phone: "buyer"})
	ev := pairPhone(t, c, "buyer", "27182818", "27182818")
	expectPairing(t, ev, "paired", "")
	st := call[control.Status](t, c, control.VerbStatus, nil)
	if st.Store.Owner != ev.KeyID {
		t.Fatalf("owner %s, want the buyer's %s", st.Store.Owner, ev.KeyID)
	}
	if k := call[control.Key](t, c, control.VerbKeysShow, control.KeyArgs{KeyID: first.KeyID}); k.State != "terminated" {
		t.Fatalf("first owner's key %+v", k)
	}
	unbound := 0
	for _, s := range call[[]control.Slot](t, c, control.VerbSlotsList, nil) {
		if s.State == "issued" {
			unbound++
		}
	}
	if unbound != 0 {
		t.Fatalf("%d issued slots survived the owner change", unbound)
	}
	expect(t, tap(t, c, "owner", "door"), "denied", "lock", "standard", "key_not_valid")
	expect(t, tap(t, c, "alice", "door"), "allowed", "lock", "fast", "")
	expect(t, tap(t, c, "alice", "dashboard"), "allowed", "engine_start", "standard", "")
	expect(t, tap(t, c, "buyer", "dashboard"), "allowed", "engine_start", "standard", "")
	if sh.FriendKey == "" {
		t.Fatal("share named no key")
	}
}

// TestPairingModeEnds: pairing mode ends by its timeout (with an event) and
// by cancel; a disabled dashboard reader does not pair; the vehicle-wide
// switch does not stop pairing.
func TestPairingModeEnds(t *testing.T) {
	dir := newDir(t, nil)
	in := start(t, dir)
	c := in.client()
	call[control.SimPhone](t, c, control.VerbSimNewPhone, control.SimPhoneArgs{Phone: "owner"})
	call[control.SimPhone](t, c, control.VerbSimPassword, control.SimPasswordArgs{Phone: "owner", Password: ownerPassword})
	call[control.PairingStatus](t, c, control.VerbPairingVerifier, control.VerifierArgs{Password: ownerPassword})

	st := call[control.PairingStatus](t, c, control.VerbPairingStart, control.PairingStartArgs{TimeoutS: 1})
	if !st.Mode || st.Until.IsZero() {
		t.Fatalf("pairing start: %+v", st)
	}
	waitFor(t, "pairing mode to time out", func() bool { return !pairingStatus(t, c).Mode })
	if ev := tap(t, c, "owner", "dashboard"); ev.Type != "tap" {
		t.Fatalf("dashboard tap after the timeout: %+v", ev)
	}
	call[control.PairingStatus](t, c, control.VerbPairingStart, control.PairingStartArgs{})
	if st := call[control.PairingStatus](t, c, control.VerbPairingCancel, nil); st.Mode {
		t.Fatalf("after cancel: %+v", st)
	}
	if ev := tap(t, c, "owner", "dashboard"); ev.Type != "tap" {
		t.Fatalf("dashboard tap after cancel: %+v", ev)
	}

	call[control.PairingStatus](t, c, control.VerbPairingStart, control.PairingStartArgs{})
	call[control.Status](t, c, control.VerbReaderEnable, control.ReaderEnableArgs{Reader: "dashboard", Enabled: false})
	if ev := tap(t, c, "owner", "dashboard"); ev.Type != "tap" || ev.Reason != "digital_key_disabled" {
		t.Fatalf("disabled dashboard in pairing mode: %+v", ev)
	}
	call[control.Status](t, c, control.VerbReaderEnable, control.ReaderEnableArgs{Reader: "dashboard", Enabled: true})
	call[control.Status](t, c, control.VerbDigitalKey, control.SwitchArgs{Enabled: false, Reason: "sold"})
	expectPairing(t, tap(t, c, "owner", "dashboard"), "paired", "")

	var actions []string
	for _, a := range call[[]control.AuditEntry](t, c, control.VerbAudit, control.AuditArgs{Limit: 100}) {
		if a.Event.Type == "pairing" {
			actions = append(actions, a.Event.Action+"/"+a.Event.Result)
		}
	}
	got := strings.Join(actions, " ")
	for _, want := range []string{"end/timeout", "end/cancelled", "paired/paired", "verifier/"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit pairing events %q lack %s", got, want)
		}
	}
}

// waitFor waits until cond holds (the bound only stops a broken test).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
	}
}
