package main

import (
	"crypto/rand"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/internal/pki"
)

// Fault injection end to end: the real daemon on its simulator, the phone
// pulled away (sim.tap's drop_at, endpoint.Faulty) at every command of every
// flow. Pulled at command k means the phone answered commands 0..k-1 and
// command k never reached it. For every k the tests check, through the
// control socket only:
//
//  1. nothing was actuated: the event says so and the daemon's outputs (lock
//     state, engine authorization) did not change;
//  2. the store changed only as PROTOCOL.md 8 allows: nothing before the
//     endpoint is authenticated (fast cryptogram matched, or AUTH1 fully
//     verified; for a friend, its attestation verified), and after that only
//     Kpersistent, a friend's first-use record and provisioned slots, each
//     once its step succeeded;
//  3. the next tap, with the phone left alone, has the expected outcome.
//
// Each flow first learns its number of commands: the drop index goes up
// until the tap completes, and the count must be the one PROTOCOL.md gives.
// The tap completes when the phone is pulled as CONTROL FLOW goes out: the
// vehicle does not wait for its answer, and PROTOCOL.md 8 asks only that
// CONTROL FLOW was attempted. That last index is checked as a success
// (actuated, last-use time written).

// faultState is what the control socket shows of the store and of the
// vehicle's outputs. The audit log, which every tap extends, is left out.
type faultState struct {
	Keys        map[string]control.Key  // by key identifier
	Slots       map[string]control.Slot // by slot identifier
	Owner       string
	Verifier    bool
	Attempts    int
	Lock        string
	EngineUntil time.Time
}

func faultObserve(t *testing.T, c *control.Client) faultState {
	t.Helper()
	s := faultState{Keys: map[string]control.Key{}, Slots: map[string]control.Slot{}}
	for _, k := range call[[]control.Key](t, c, control.VerbKeysList, nil) {
		k.NotBefore, k.NotAfter, k.Created, k.LastUsed = k.NotBefore.UTC(), k.NotAfter.UTC(), k.Created.UTC(), k.LastUsed.UTC()
		s.Keys[k.KeyID] = k
	}
	for _, sl := range call[[]control.Slot](t, c, control.VerbSlotsList, nil) {
		s.Slots[sl.Slot] = sl
	}
	st := call[control.Status](t, c, control.VerbStatus, nil)
	s.Owner, s.Verifier, s.Attempts = st.Store.Owner, st.Pairing.Verifier, st.Pairing.AttemptsLeft
	s.Lock, s.EngineUntil = st.Actuators.Lock, st.Actuators.EngineAuthorizedUntil.UTC()
	if len(s.Keys) != st.Store.Endpoints || len(s.Slots) != st.Store.Slots {
		t.Fatalf("keys.list and slots.list disagree with the status: %d keys, %d slots, status %+v", len(s.Keys), len(s.Slots), st.Store)
	}
	return s
}

func (s faultState) clone() faultState {
	s.Keys, s.Slots = maps.Clone(s.Keys), maps.Clone(s.Slots)
	return s
}

// faultCheck fails unless the daemon shows exactly want.
func faultCheck(t *testing.T, what string, want, got faultState) {
	t.Helper()
	var diffs []string
	for _, id := range slices.Sorted(maps.Keys(want.Keys)) {
		switch g, ok := got.Keys[id]; {
		case !ok:
			diffs = append(diffs, "key "+id+" disappeared")
		case g != want.Keys[id]:
			diffs = append(diffs, fmt.Sprintf("key %s is %+v, want %+v", id, g, want.Keys[id]))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(got.Keys)) {
		if _, ok := want.Keys[id]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected key %+v", got.Keys[id]))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(want.Slots)) {
		switch g, ok := got.Slots[id]; {
		case !ok:
			diffs = append(diffs, "slot "+id+" disappeared")
		case g != want.Slots[id]:
			diffs = append(diffs, fmt.Sprintf("slot %s is %+v, want %+v", id, g, want.Slots[id]))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(got.Slots)) {
		if _, ok := want.Slots[id]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected slot %+v", got.Slots[id]))
		}
	}
	if got.Owner != want.Owner {
		diffs = append(diffs, fmt.Sprintf("owner %q, want %q", got.Owner, want.Owner))
	}
	if got.Verifier != want.Verifier || got.Attempts != want.Attempts {
		diffs = append(diffs, fmt.Sprintf("verifier %v with %d attempts left, want %v with %d", got.Verifier, got.Attempts, want.Verifier, want.Attempts))
	}
	if got.Lock != want.Lock {
		diffs = append(diffs, fmt.Sprintf("lock %s, want %s", got.Lock, want.Lock))
	}
	if !got.EngineUntil.Equal(want.EngineUntil) {
		diffs = append(diffs, fmt.Sprintf("engine authorized until %v, want %v", got.EngineUntil, want.EngineUntil))
	}
	if len(diffs) > 0 {
		t.Fatalf("%s: the store or the outputs are not as PROTOCOL.md 8 allows:\n  %s", what, strings.Join(diffs, "\n  "))
	}
}

// The allowed changes. Each one adds to want what the step may write, taking
// from got only what the test cannot know in advance (times, new slot and key
// identifiers) after checking it.

// kpersistent: AUTH1 verified, the key's Kpersistent was stored.
func (w *faultState) kpersistent(id string) {
	k := w.Keys[id]
	k.HasKpersistent = true
	w.Keys[id] = k
}

// used: the tap succeeded and the key's last-use time moved forward.
func (w *faultState) used(t *testing.T, id string, got faultState) {
	t.Helper()
	k, g := w.Keys[id], got.Keys[id]
	if !g.LastUsed.After(k.LastUsed) {
		t.Fatalf("key %s: last use %v after a successful tap, was %v", id, g.LastUsed, k.LastUsed)
	}
	k.LastUsed = g.LastUsed
	w.Keys[id] = k
}

// slotsIssued: owner provisioning recorded new slots for the given entries,
// issued to the owner and bound to no one.
func (w *faultState) slotsIssued(t *testing.T, owner string, entries []int, got faultState) {
	t.Helper()
	var fresh []control.Slot
	for id, s := range got.Slots {
		if _, ok := w.Slots[id]; !ok {
			fresh = append(fresh, s)
		}
	}
	slices.SortFunc(fresh, func(a, b control.Slot) int { return a.Entry - b.Entry })
	if len(fresh) != len(entries) {
		t.Fatalf("%d new slots %+v, want %d (entries %v)", len(fresh), fresh, len(entries), entries)
	}
	for i, s := range fresh {
		if want := (control.Slot{Slot: s.Slot, Entry: entries[i], IssuedTo: owner, State: "issued"}); s != want || len(s.Slot) != 16 {
			t.Fatalf("new slot %+v, want %+v", s, want)
		}
		w.Slots[s.Slot] = s
	}
}

// friendStored: friend first use stored the friend's key with its
// Kpersistent and bound its slot (PROTOCOL.md 3.8 step 4); with its last-use
// time when the tap succeeded.
func (w *faultState) friendStored(t *testing.T, sh faultShare, succeeded bool, got faultState) {
	t.Helper()
	if _, ok := w.Keys[sh.key]; ok {
		t.Fatalf("friend %s was stored already", sh.key)
	}
	g := got.Keys[sh.key]
	want := control.Key{
		KeyID: sh.key, Role: "friend", FriendlyName: sh.name, Profile: 2, ProfileName: "access and drive", State: "active",
		Slot: sh.slot, SlotState: "bound", NotBefore: sh.notBefore, NotAfter: sh.notAfter, Created: g.Created, HasKpersistent: true,
	}
	if succeeded {
		want.LastUsed = g.LastUsed
	}
	if g != want || g.Created.IsZero() || succeeded == g.LastUsed.IsZero() {
		t.Fatalf("friend key %+v, want %+v", g, want)
	}
	w.Keys[sh.key] = g
	s := w.Slots[sh.slot]
	if s.State != "issued" || s.BoundEndpoint != "" {
		t.Fatalf("the friend's slot was %+v before its first use", s)
	}
	s.State, s.BoundEndpoint = "bound", sh.key
	w.Slots[sh.slot] = s
}

// paired: pairing stored the new owner with its own slot and deleted the
// verifier; the previous owner's key is terminated, its own slot and its
// unbound slots revoked, friends' bound slots untouched (PROTOCOL.md 6.3).
func (w *faultState) paired(t *testing.T, id string, got faultState) {
	t.Helper()
	if prev := w.Owner; prev != "" {
		k := w.Keys[prev]
		for sid, s := range w.Slots {
			if s.IssuedTo == prev && (s.Slot == k.Slot || s.State == "issued") {
				s.State = "revoked"
				w.Slots[sid] = s
			}
		}
		k.State, k.SlotState = "terminated", "revoked"
		w.Keys[prev] = k
	}
	if _, ok := w.Keys[id]; ok {
		t.Fatalf("the new owner %s was stored already", id)
	}
	g := got.Keys[id]
	want := control.Key{KeyID: id, Role: "owner", FriendlyName: "owner", Profile: 0, ProfileName: "owner", State: "active",
		Slot: g.Slot, SlotState: "bound", Created: g.Created}
	if _, ok := w.Slots[g.Slot]; ok || g != want || g.Created.IsZero() || len(g.Slot) != 16 {
		t.Fatalf("new owner %+v, want %+v with a new slot", g, want)
	}
	w.Keys[id] = g
	w.Slots[g.Slot] = control.Slot{Slot: g.Slot, Entry: 0, IssuedTo: id, BoundEndpoint: id, State: "bound"}
	w.Owner, w.Verifier, w.Attempts = id, false, 0
}

// toggled: a door tap that was allowed unlocked or locked the car.
func (w *faultState) toggled() {
	if w.Lock == "unlocked" {
		w.Lock = "locked"
	} else {
		w.Lock = "unlocked"
	}
}

// doorAction is what a door tap asks for in the lock state lock.
func doorAction(lock string) string {
	if lock == "unlocked" {
		return "lock"
	}
	return "unlock"
}

// faultDaemon starts a daemon in a fresh directory. Its timeouts are
// widened: a phone pulled away fails at once, and these tests pair many
// phones (the phone's scrypt, on a race-built daemon, on a machine that may
// be busy) without testing the timeouts. The engine-start window outlasts
// the test, so that the authorization the status shows changes only by a
// tap.
func faultDaemon(t *testing.T) *control.Client {
	t.Helper()
	dir := newDir(t, func(s string) string {
		for _, r := range [][2]string{
			{`apdu = "500ms"`, `apdu = "5s"`}, {`long = "1s"`, `long = "5s"`}, {`transaction = "2s"`, `transaction = "9s"`},
			{`engine_window = "30s"`, `engine_window = "1h"`},
		} {
			if strings.Count(s, r[0]) != 1 {
				t.Fatalf("the simulator configuration has no single %s: update faultDaemon", r[0])
			}
			s = strings.Replace(s, r[0], r[1], 1)
		}
		return s
	})
	return start(t, dir).client()
}

// faultVerifier is a verifier file for ownerPassword, derived once: the
// tests pair many owners, and a verifier the daemon derives itself costs a
// scrypt each time.
var faultVerifier = sync.OnceValues(func() (string, error) {
	v, err := pki.NewVerifier(rand.Reader, ownerPassword, pki.MinScryptN)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "dkvehicled-fault-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "verifier.json")
	if err := pki.WriteVerifier(path, v); err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	return string(b), err
})

// faultPairingReady gives the vehicle a new verifier (7 attempts), starts
// pairing mode and types the password on the phone.
func faultPairingReady(t *testing.T, c *control.Client, phone string) {
	t.Helper()
	file, err := faultVerifier()
	if err != nil {
		t.Fatal(err)
	}
	call[control.PairingStatus](t, c, control.VerbPairingVerifier, control.VerifierArgs{File: file})
	if st := call[control.PairingStatus](t, c, control.VerbPairingStart, control.PairingStartArgs{}); !st.Mode || st.AttemptsLeft != 7 {
		t.Fatalf("pairing start: %+v", st)
	}
	call[control.SimPhone](t, c, control.VerbSimPassword, control.SimPasswordArgs{Phone: phone, Password: ownerPassword})
}

// faultNewOwner makes a phone and pairs it: a new owner with no Kpersistent
// and no provisioned slots, replacing the previous one.
func faultNewOwner(t *testing.T, c *control.Client, phone string) string {
	t.Helper()
	call[control.SimPhone](t, c, control.VerbSimNewPhone, control.SimPhoneArgs{Phone: phone})
	faultPairingReady(t, c, phone)
	ev := tap(t, c, phone, "dashboard")
	expectPairing(t, ev, "paired", "")
	if ev.Detail != "" || ev.KeyID == "" {
		t.Fatalf("pairing %s: %+v", phone, ev)
	}
	return ev.KeyID
}

// faultDrop taps with the phone pulled away as command k arrives.
func faultDrop(t *testing.T, c *control.Client, phone, reader string, k int) control.Event {
	t.Helper()
	return call[control.Event](t, c, control.VerbSimTap, control.SimPlaceArgs{Phone: phone, Reader: reader, DropAt: &k})
}

// faultPulled checks the event of a tap whose phone left before the last
// command: an error, nothing actuated, no CONTROL FLOW sent (so no reason),
// and how far the vehicle got (path, identified key).
func faultPulled(t *testing.T, ev control.Event, k int, cmd, reader, action, path, keyID string) {
	t.Helper()
	if ev.Type != "tap" || ev.Reader != reader || ev.Result != "error" || ev.Actuated || ev.Reason != "" ||
		ev.Action != action || ev.Path != path || ev.KeyID != keyID || !strings.Contains(ev.Detail, "phone left") {
		t.Fatalf("pulled at command %d (%s): event %+v;\nwant an error at %s, action %s, path %s, key %q, nothing actuated",
			k, cmd, ev, reader, action, path, keyID)
	}
}

// faultFlow is one flow of PROTOCOL.md 3 with the phone pulled at each of
// its commands.
type faultFlow struct {
	reader string
	// cmds are the commands of a complete tap, CONTROL FLOW last.
	cmds []string
	// prepare brings the vehicle and a phone to the flow's start state
	// before the drop at command k; it returns the phone.
	prepare func(k int) string
	// pulled checks a tap pulled at command k < len(cmds)-1 that failed;
	// completed the one pulled as CONTROL FLOW went out.
	pulled    func(k int, cmd string, ev control.Event, before, after faultState)
	completed func(ev control.Event, before, after faultState)
	// next checks the phone's next tap, left alone, after the drop at k.
	next func(k int, phone string)
}

// faultEvery pulls the phone at command 0, 1, ... until a tap completes,
// which must happen exactly at the flow's last command, CONTROL FLOW (the
// vehicle ignores its answer: pulled there, the tap is complete).
func faultEvery(t *testing.T, c *control.Client, f faultFlow) {
	t.Helper()
	last := len(f.cmds) - 1
	for k := 0; ; k++ {
		cmd := f.cmds[k]
		phone := f.prepare(k)
		before := faultObserve(t, c)
		ev := faultDrop(t, c, phone, f.reader, k)
		after := faultObserve(t, c)
		done := ev.Result == "allowed"
		switch {
		case !done && k >= last:
			// More commands than PROTOCOL.md gives: learn how many.
			count := "more than 20"
			for n := k + 1; n < 20; n++ {
				if faultDrop(t, c, f.prepare(n), f.reader, n).Result == "allowed" {
					count = fmt.Sprint(n + 1)
					break
				}
			}
			t.Fatalf("pulled at command %d (%s), the tap failed (%+v): a complete tap has %s commands, PROTOCOL.md says %d %v",
				k, cmd, ev, count, len(f.cmds), f.cmds)
		case done && k != last:
			t.Fatalf("the tap completed (%+v) with the phone pulled at command %d (%s), before %s", ev, k, cmd, f.cmds[last])
		case !done:
			f.pulled(k, cmd, ev, before, after)
		default:
			f.completed(ev, before, after)
		}
		f.next(k, phone)
		if done {
			t.Logf("%d commands %v; the phone pulled at each", k+1, f.cmds)
			return
		}
	}
}

// TestFaultFastDoor: the owner, with a Kpersistent, on the fast path at the
// door. Nothing is stored before the tap succeeds: a fast tap at the door
// exchanges nothing protected, and its only write is the last-use time.
func TestFaultFastDoor(t *testing.T) {
	c := faultDaemon(t)
	owner := setupOwner(t, c).KeyID
	expect(t, tap(t, c, "owner", "door"), "allowed", "unlock", "standard", "") // Kpersistent on both sides
	faultEvery(t, c, faultFlow{
		reader:  "door",
		cmds:    []string{"SELECT", "AUTH0 (P1 01)", "CONTROL FLOW"},
		prepare: func(int) string { return "owner" },
		pulled: func(k int, cmd string, ev control.Event, before, after faultState) {
			// Pulled at SELECT or AUTH0: no cryptogram, nothing known.
			faultPulled(t, ev, k, cmd, "door", doorAction(before.Lock), "none", "")
			faultCheck(t, fmt.Sprintf("pulled at command %d (%s)", k, cmd), before, after)
		},
		completed: func(ev control.Event, before, after faultState) {
			expect(t, ev, "allowed", doorAction(before.Lock), "fast", "")
			if ev.KeyID != owner {
				t.Fatalf("fast tap by %s, want the owner %s", ev.KeyID, owner)
			}
			want := before.clone()
			want.used(t, owner, after)
			want.toggled()
			faultCheck(t, "pulled at CONTROL FLOW", want, after)
		},
		next: func(k int, phone string) {
			lock := faultObserve(t, c).Lock
			expect(t, tap(t, c, phone, "door"), "allowed", doorAction(lock), "fast", "")
		},
	})
}

// TestFaultStandardDoor: a new owner (no Kpersistent yet) at the door, on the
// standard path. AUTH1's answer is the last before CONTROL FLOW: no drop
// falls between authentication and the tap's success, so every failed tap
// leaves the store as it was, and the success stores Kpersistent with the
// last-use time. The phone stores its Kpersistent when it answers AUTH1, so
// the next tap is fast exactly when both sides have one.
func TestFaultStandardDoor(t *testing.T) {
	c := faultDaemon(t)
	var owner string
	faultEvery(t, c, faultFlow{
		reader: "door",
		cmds:   []string{"SELECT", "AUTH0", "AUTH1", "CONTROL FLOW"},
		prepare: func(k int) string {
			phone := fmt.Sprintf("std%d", k)
			owner = faultNewOwner(t, c, phone)
			return phone
		},
		pulled: func(k int, cmd string, ev control.Event, before, after faultState) {
			path := "none"
			if k == 2 { // AUTH1 went unanswered: the vehicle took the standard path
				path = "standard"
			}
			faultPulled(t, ev, k, cmd, "door", doorAction(before.Lock), path, "")
			faultCheck(t, fmt.Sprintf("pulled at command %d (%s)", k, cmd), before, after)
		},
		completed: func(ev control.Event, before, after faultState) {
			expect(t, ev, "allowed", doorAction(before.Lock), "standard", "")
			if ev.KeyID != owner {
				t.Fatalf("tap by %s, want the owner %s", ev.KeyID, owner)
			}
			want := before.clone()
			want.kpersistent(owner)
			want.used(t, owner, after)
			want.toggled()
			faultCheck(t, "pulled at CONTROL FLOW", want, after)
		},
		next: func(k int, phone string) {
			path := "standard"
			if k == 3 {
				path = "fast"
			}
			lock := faultObserve(t, c).Lock
			ev := tap(t, c, phone, "door")
			expect(t, ev, "allowed", doorAction(lock), path, "")
			if ev.KeyID != owner {
				t.Fatalf("next tap by %s, want %s", ev.KeyID, owner)
			}
		},
	})
}

// faultShare is a key the owner shared with a friend's phone.
type faultShare struct {
	phone, key, slot, name string
	notBefore, notAfter    time.Time
}

// TestFaultFriendFirstUse: a friend's first tap at the door, each drop index
// with a new friend phone. The friend is authenticated only once its
// attestation verified; its record, Kpersistent and slot binding are written
// in one store transaction before the EXCHANGE that clears the attestation
// (PROTOCOL.md 3.8 steps 4 and 5). So a drop at any command up to the last
// attestation read stores nothing, and a drop at the clearing EXCHANGE
// leaves the friend stored (and its next tap fast: the phone stored the same
// Kpersistent when it answered AUTH1).
func TestFaultFriendFirstUse(t *testing.T) {
	c := faultDaemon(t)
	owner := setupOwner(t, c).KeyID
	entries := 0 // the owner phone's shareable entries
	var sh faultShare
	const (
		readSigBmp  = 3
		clearAttest = 6
	)
	faultEvery(t, c, faultFlow{
		reader: "door",
		cmds: []string{"SELECT", "AUTH0 (P1 01)", "AUTH1", "EXCHANGE read SigBmp", "EXCHANGE read attestation (first 192 bytes)",
			"EXCHANGE read attestation (rest)", "EXCHANGE clear attestation", "CONTROL FLOW"},
		prepare: func(k int) string {
			if entries == 0 {
				ev := tap(t, c, "owner", "dashboard")
				expect(t, ev, "allowed", "engine_start", "standard", "")
				if ev.Provisioned != 7 {
					t.Fatalf("owner provisioning: %d entries", ev.Provisioned)
				}
				entries = 7
			}
			entries--
			sh = faultShare{phone: fmt.Sprintf("friend%d", k), name: fmt.Sprintf("Friend %d", k)}
			sh.notBefore = time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
			sh.notAfter = sh.notBefore.Add(30 * 24 * time.Hour)
			call[control.SimPhone](t, c, control.VerbSimNewPhone, control.SimPhoneArgs{Phone: sh.phone})
			r := call[control.SimShare](t, c, control.VerbSimShare, control.SimShareArgs{From: "owner", To: sh.phone, Profile: 2,
				Name: sh.name, NotBefore: sh.notBefore.Format(time.RFC3339), NotAfter: sh.notAfter.Format(time.RFC3339)})
			sh.key, sh.slot = r.FriendKey, r.Slot
			if s, ok := faultObserve(t, c).Slots[sh.slot]; !ok || s.State != "issued" || s.IssuedTo != owner {
				t.Fatalf("shared slot %s: %+v", sh.slot, s)
			}
			return sh.phone
		},
		pulled: func(k int, cmd string, ev control.Event, before, after faultState) {
			path, key := "none", ""
			switch {
			case k == 2:
				path = "standard"
			case k >= readSigBmp:
				path = "standard+friend_first_use" // AUTH1 named an issued, unbound slot
			}
			if k >= clearAttest {
				key = sh.key // the attestation verified
			}
			faultPulled(t, ev, k, cmd, "door", doorAction(before.Lock), path, key)
			if ev.FirstUse != (k >= clearAttest) {
				t.Fatalf("pulled at command %d: first use %v", k, ev.FirstUse)
			}
			want := before.clone()
			if k >= clearAttest {
				want.friendStored(t, sh, false, after)
			}
			faultCheck(t, fmt.Sprintf("pulled at command %d (%s)", k, cmd), want, after)
		},
		completed: func(ev control.Event, before, after faultState) {
			expect(t, ev, "allowed", doorAction(before.Lock), "standard+friend_first_use", "")
			if !ev.FirstUse || ev.KeyID != sh.key || ev.Slot != sh.slot || ev.FriendlyName != sh.name {
				t.Fatalf("first use %+v", ev)
			}
			want := before.clone()
			want.friendStored(t, sh, true, after)
			want.toggled()
			faultCheck(t, "pulled at CONTROL FLOW", want, after)
		},
		next: func(k int, phone string) {
			lock := faultObserve(t, c).Lock
			ev := tap(t, c, phone, "door")
			if k < clearAttest {
				expect(t, ev, "allowed", doorAction(lock), "standard+friend_first_use", "")
			} else {
				expect(t, ev, "allowed", doorAction(lock), "fast", "")
			}
			if ev.KeyID != sh.key || ev.FirstUse != (k < clearAttest) {
				t.Fatalf("next tap after the drop at %d: %+v", k, ev)
			}
		},
	})
}

// TestFaultEngineStart: a new owner's first engine start at the dashboard:
// slot provisioning (PROTOCOL.md 3.10), then the immobilizer token check
// (3.9). Each drop index with a new owner, paired just before. Once AUTH1
// verified, the vehicle writes Kpersistent before its first EXCHANGE goes
// out, and records the 7 new slots before the EXCHANGE that writes them to
// the phone: a drop from that EXCHANGE on leaves Kpersistent, a drop from the
// provisioning write on leaves the new slots too (issued, bound to no one),
// and nothing else changes before the tap succeeds.
func TestFaultEngineStart(t *testing.T) {
	c := faultDaemon(t)
	var owner, phone string
	const (
		readBmp    = 3 // the first EXCHANGE: Kpersistent is stored before it goes out
		writeSlots = 4 // the new slots are recorded before it goes out
	)
	faultEvery(t, c, faultFlow{
		reader: "dashboard",
		cmds: []string{"SELECT", "AUTH0 (P1 00, P2 02)", "AUTH1", "EXCHANGE read SigBmp and SlotIdentBmp",
			"EXCHANGE write slot identifiers, tokens and bitmaps", "EXCHANGE read the immobilizer token", "CONTROL FLOW"},
		prepare: func(k int) string {
			phone = fmt.Sprintf("eng%d", k)
			owner = faultNewOwner(t, c, phone)
			return phone
		},
		pulled: func(k int, cmd string, ev control.Event, before, after faultState) {
			path, key := "none", ""
			if k >= 2 {
				path = "standard"
			}
			if k >= readBmp { // AUTH1 verified
				key = owner
			}
			faultPulled(t, ev, k, cmd, "dashboard", "engine_start", path, key)
			if ev.Provisioned != 0 && (k < writeSlots || ev.Provisioned != 7) {
				t.Fatalf("pulled at command %d (%s): %d entries provisioned", k, cmd, ev.Provisioned)
			}
			want := before.clone()
			if k >= readBmp {
				want.kpersistent(owner)
			}
			if k >= writeSlots {
				want.slotsIssued(t, owner, []int{1, 2, 3, 4, 5, 6, 7}, after)
			}
			faultCheck(t, fmt.Sprintf("pulled at command %d (%s)", k, cmd), want, after)
		},
		completed: func(ev control.Event, before, after faultState) {
			expect(t, ev, "allowed", "engine_start", "standard", "")
			if ev.KeyID != owner || ev.Provisioned != 7 {
				t.Fatalf("engine start %+v", ev)
			}
			want := before.clone()
			want.kpersistent(owner)
			want.slotsIssued(t, owner, []int{1, 2, 3, 4, 5, 6, 7}, after)
			want.used(t, owner, after)
			if !after.EngineUntil.After(before.EngineUntil) {
				t.Fatalf("engine authorized until %v after an engine start, was %v", after.EngineUntil, before.EngineUntil)
			}
			want.EngineUntil = after.EngineUntil
			faultCheck(t, "pulled at CONTROL FLOW", want, after)
		},
		next: func(k int, phone string) {
			// At the door first: the fast path works exactly when the
			// vehicle stored a Kpersistent, and then it is the one the
			// phone stored when it answered AUTH1.
			path := "standard"
			if k >= readBmp {
				path = "fast"
			}
			lock := faultObserve(t, c).Lock
			expect(t, tap(t, c, phone, "door"), "allowed", doorAction(lock), path, "")
			// The dashboard provisions again unless the provisioning write
			// reached the phone.
			ev := tap(t, c, phone, "dashboard")
			expect(t, ev, "allowed", "engine_start", "standard", "")
			want := 7
			if k > writeSlots {
				want = 0
			}
			if ev.KeyID != owner || ev.Provisioned != want {
				t.Fatalf("next engine start after the drop at %d: %d entries provisioned, want %d: %+v", k, ev.Provisioned, want, ev)
			}
		},
	})

	// The last owner again, its slots provisioned: engine start with the
	// immobilizer token check only. The owner has a Kpersistent already;
	// from the first EXCHANGE on, a drop leaves it replaced by this tap's
	// (which the socket cannot show: the door's fast path after every drop
	// shows that the vehicle and the phone hold the same one).
	faultEvery(t, c, faultFlow{
		reader:  "dashboard",
		cmds:    []string{"SELECT", "AUTH0 (P1 00, P2 02)", "AUTH1", "EXCHANGE read SigBmp and SlotIdentBmp", "EXCHANGE read the immobilizer token", "CONTROL FLOW"},
		prepare: func(int) string { return phone },
		pulled: func(k int, cmd string, ev control.Event, before, after faultState) {
			path, key := "none", ""
			if k >= 2 {
				path = "standard"
			}
			if k >= readBmp {
				key = owner
			}
			faultPulled(t, ev, k, cmd, "dashboard", "engine_start", path, key)
			if ev.Provisioned != 0 || !before.Keys[owner].HasKpersistent {
				t.Fatalf("pulled at command %d (%s): %+v", k, cmd, ev)
			}
			faultCheck(t, fmt.Sprintf("provisioned owner pulled at command %d (%s)", k, cmd), before, after)
		},
		completed: func(ev control.Event, before, after faultState) {
			expect(t, ev, "allowed", "engine_start", "standard", "")
			if ev.KeyID != owner || ev.Provisioned != 0 {
				t.Fatalf("engine start %+v", ev)
			}
			want := before.clone()
			want.used(t, owner, after)
			if !after.EngineUntil.After(before.EngineUntil) {
				t.Fatalf("engine authorized until %v after an engine start, was %v", after.EngineUntil, before.EngineUntil)
			}
			want.EngineUntil = after.EngineUntil
			faultCheck(t, "provisioned owner pulled at CONTROL FLOW", want, after)
		},
		next: func(k int, phone string) {
			lock := faultObserve(t, c).Lock
			expect(t, tap(t, c, phone, "door"), "allowed", doorAction(lock), "fast", "")
			ev := tap(t, c, phone, "dashboard")
			expect(t, ev, "allowed", "engine_start", "standard", "")
			if ev.KeyID != owner || ev.Provisioned != 0 {
				t.Fatalf("next engine start after the drop at %d: %+v", k, ev)
			}
		},
	})
}

// TestFaultPairing: owner pairing (PROTOCOL.md 6) with the phone pulled at
// each command, on a vehicle that has an owner, provisioned slots and a
// friend, each index with a new phone and a new verifier. The attempt is
// counted once the framework SELECT answered, before SPAKE2+ REQUEST goes
// out; the owner is stored, replacing the previous one, only after GET
// DATA's whole answer checked out, right before OP CONTROL FLOW. The number
// of commands depends on the certificates' sizes (WRITE DATA is chained,
// GET DATA's answer comes with GET RESPONSE): it is learned.
func TestFaultPairing(t *testing.T) {
	c := faultDaemon(t)
	setupOwner(t, c)
	if ev := tap(t, c, "owner", "dashboard"); ev.Provisioned != 7 || !ev.Actuated {
		t.Fatalf("owner provisioning %+v", ev)
	}
	call[control.SimPhone](t, c, control.VerbSimNewPhone, control.SimPhoneArgs{Phone: "alice"})
	call[control.SimShare](t, c, control.VerbSimShare, control.SimShareArgs{From: "owner", To: "alice", Profile: 2, Name: "Alice"})
	expect(t, tap(t, c, "alice", "door"), "allowed", "unlock", "standard+friend_first_use", "")

	phoneKeys := func(phone string) []string {
		for _, p := range call[[]control.SimPhone](t, c, control.VerbSimPhones, nil) {
			if p.Name == phone {
				return p.Keys
			}
		}
		t.Fatalf("no phone %s", phone)
		return nil
	}
	for k := 0; ; k++ {
		if k == 30 {
			t.Fatalf("no pairing completed with the phone pulled at commands 0 to %d", k-1)
		}
		phone := fmt.Sprintf("pair%d", k)
		call[control.SimPhone](t, c, control.VerbSimNewPhone, control.SimPhoneArgs{Phone: phone})
		faultPairingReady(t, c, phone)
		before := faultObserve(t, c)
		ev := faultDrop(t, c, phone, "dashboard", k)
		after := faultObserve(t, c)
		want := before.clone()
		if ev.Result != "paired" {
			expectPairing(t, ev, "error", "")
			if ev.KeyID != "" || !strings.Contains(ev.Detail, "phone left") {
				t.Fatalf("pulled at command %d: %+v", k, ev)
			}
			if k >= 1 { // the framework SELECT answered: the attempt is spent
				want.Attempts--
			}
			faultCheck(t, fmt.Sprintf("pairing pulled at command %d", k), want, after)
			if st := pairingStatus(t, c); !st.Mode {
				t.Fatalf("pulled at command %d: pairing mode ended", k)
			}
			// Left alone, the phone pairs with the same verifier.
			ev = tap(t, c, phone, "dashboard")
			expectPairing(t, ev, "paired", "")
			got := faultObserve(t, c)
			want = after.clone()
			want.paired(t, ev.KeyID, got)
			faultCheck(t, fmt.Sprintf("pairing after the drop at %d", k), want, got)
			if ev.Detail != "" || !slices.Equal(phoneKeys(phone), []string{ev.KeyID}) {
				t.Fatalf("pairing after the drop at %d: %+v, the phone holds %v", k, ev, phoneKeys(phone))
			}
			continue
		}
		// Pulled as OP CONTROL FLOW went out: the owner is stored, the
		// phone never installed its key, and the event says so.
		if k < 5 {
			t.Fatalf("paired with the phone pulled at command %d, before GET DATA: %+v", k, ev)
		}
		expectPairing(t, ev, "paired", "")
		if !strings.Contains(ev.Detail, "did not reach the phone") {
			t.Fatalf("pulled at OP CONTROL FLOW (command %d): detail %q", k, ev.Detail)
		}
		orphan := ev.KeyID
		want.paired(t, orphan, after)
		faultCheck(t, fmt.Sprintf("pairing pulled at OP CONTROL FLOW (command %d)", k), want, after)
		if keys := phoneKeys(phone); len(keys) != 0 {
			t.Fatalf("the phone installed %v without OP CONTROL FLOW", keys)
		}
		// Pairing mode is over: the phone, without a key, gets an ordinary
		// transaction that fails and changes nothing.
		if ev := tap(t, c, phone, "dashboard"); ev.Type != "tap" || ev.Result == "allowed" || ev.Actuated {
			t.Fatalf("dashboard tap of the phone without its key: %+v", ev)
		}
		faultCheck(t, "ordinary tap of the phone without its key", after, faultObserve(t, c))
		// A new verifier: the phone pairs, replacing the owner it never got.
		faultPairingReady(t, c, phone)
		before = faultObserve(t, c)
		ev = tap(t, c, phone, "dashboard")
		expectPairing(t, ev, "paired", "")
		got := faultObserve(t, c)
		want = before.clone()
		want.paired(t, ev.KeyID, got)
		faultCheck(t, "pairing again", want, got)
		if !slices.Equal(phoneKeys(phone), []string{ev.KeyID}) {
			t.Fatalf("the phone holds %v, want %s", phoneKeys(phone), ev.KeyID)
		}
		expect(t, tap(t, c, "alice", "door"), "allowed", "lock", "fast", "")
		t.Logf("pairing: %d commands (OP CONTROL FLOW is command %d); the phone pulled at each", k+1, k)
		return
	}
}
