//go:build pcsc

package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dkvehicled/dkvehicled/control"
)

// replayAt lays on vpcd reader n a card that plays the transcript back
// (dkendpoint replay) and returns what it saw.
func replayAt(t *testing.T, c *control.Client, p *phone, file string, n int) tapReport {
	t.Helper()
	waitAbsent(t, c, n)
	out := p.run("replay", "-transcript", file, "-reader", fmt.Sprint(n), "-json")
	var r tapReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("replay report %q: %v", out, err)
	}
	return r
}

// TestPCSCReplay: an attacker who recorded the owner's successful taps over
// the air (a fast door tap, a standard engine start on the dashboard) and
// plays them back to the daemon through pcscd is refused: nothing actuated, a
// protocol error naming the AUTH1 answer, the keys and slots as they were
// (last use, Kpersistent); the owner's own phone still taps, on the fast
// path at the door, which it could not if the vehicle's Kpersistent had
// moved.
func TestPCSCReplay(t *testing.T) {
	startPCSCD(t)
	dir := pcscDir(t)
	in := start(t, dir)
	c := in.client()
	waitReaders(t, c, true)
	owner := newPhone(t, c, dir, "owner")
	pairOwner(t, c, owner)
	tapAndCheck(t, c, owner, 0, "allowed", "unlock", "standard", "")       // Kpersistent: the door asks for the fast path
	tapAndCheck(t, c, owner, 1, "allowed", "engine_start", "standard", "") // provisioning

	taps := []struct {
		reader         int
		action, path   string
		file, detail   string
		recordedAnswer int
	}{
		// The old cryptogram matches nothing; the vehicle asks for AUTH1 and
		// gets the recorded answer to CONTROL FLOW.
		{0, "lock", "fast", filepath.Join(dir, "door-tap.json"), "AUTH1 response: secure channel: bad length", 3},
		// The old AUTH1 answer was made with the old session keys.
		{1, "engine_start", "standard", filepath.Join(dir, "dashboard-tap.json"), "AUTH1 response: secure channel: MAC mismatch", 6},
	}
	for _, tp := range taps {
		reader := []string{"door", "dashboard"}[tp.reader]
		seq := lastSeq(t, c)
		r := owner.tap(tp.reader, "-record", tp.file)
		expect(t, lastTap(t, c, reader, seq), "allowed", tp.action, tp.path, "")
		if r.ControlFlow != "803c0100" || r.Commands != tp.recordedAnswer {
			t.Fatalf("recorded %s tap: %+v", reader, r)
		}
	}
	keys := keysJSON(t, c)
	slots, _ := json.Marshal(call[[]control.Slot](t, c, control.VerbSlotsList, nil))

	for _, tp := range taps {
		reader := []string{"door", "dashboard"}[tp.reader]
		seq := lastSeq(t, c)
		r := replayAt(t, c, owner, tp.file, tp.reader)
		ev := lastTap(t, c, reader, seq)
		action := tp.action
		if tp.reader == 0 {
			action = "unlock" // the recorded tap locked the car; the replay would unlock it
		}
		expect(t, ev, "error", action, "standard", "protocol_error")
		if ev.Detail != tp.detail || ev.KeyID != "" {
			t.Fatalf("replayed %s tap: %+v", reader, ev)
		}
		if r.ControlFlow != "803c0006" {
			t.Fatalf("the replaying card saw %+v", r)
		}
	}
	if k := keysJSON(t, c); k != keys {
		t.Fatalf("keys changed by the replays:\n%s\n%s", keys, k)
	}
	if s, _ := json.Marshal(call[[]control.Slot](t, c, control.VerbSlotsList, nil)); string(s) != string(slots) {
		t.Fatalf("slots changed by the replays:\n%s\n%s", slots, s)
	}
	// One action per allowed tap, none for the replays.
	log := in.log()
	for a, want := range map[string]int{`msg="hal: unlock"`: 1, `msg="hal: lock"`: 1, `msg="hal: engine_start"`: 2} {
		if n := strings.Count(log, a); n != want {
			t.Fatalf("%d %s logged, want %d", n, a, want)
		}
	}

	tapAndCheck(t, c, owner, 0, "allowed", "unlock", "fast", "")
	tapAndCheck(t, c, owner, 1, "allowed", "engine_start", "standard", "")
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
