package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// The store check (dkvehicled -check-store, dkctl store check) and the crash
// test: SIGKILL at random moments of a long run of store-changing operations.

var crashSeed = flag.Int64("crash.seed", 0, "seed of TestCrashDuringOperations (0: from the clock)")

// dkctlBinary builds dkctl beside the daemon under test, once.
var dkctlBinary = sync.OnceValues(func() (string, error) {
	path := filepath.Join(filepath.Dir(binary), "dkctl")
	if out, err := exec.Command("go", "build", "-o", path, "../dkctl").CombinedOutput(); err != nil {
		return "", fmt.Errorf("building dkctl: %v\n%s", err, out)
	}
	return path, nil
})

// crashConfig gives the daemon generous transaction timeouts: these tests
// are about what survives a crash, not about speed, and a loaded machine
// must not turn a tap into a timeout.
func crashConfig(s string) string {
	return strings.NewReplacer(`apdu = "500ms"`, `apdu = "5s"`, `long = "1s"`, `long = "5s"`, `transaction = "2s"`, `transaction = "8s"`).Replace(s)
}

// runCode runs a command and returns its exit code and combined output. A
// race-enabled child exits at once instead of sleeping a second first.
func runCode(t testing.TB, name string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	if _, exited := errors.AsType[*exec.ExitError](err); err != nil && !exited {
		t.Fatalf("%s: %v", name, err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// checkStoreFlag runs dkvehicled -check-store on dir's configuration.
func checkStoreFlag(t testing.TB, dir string) (int, string) {
	t.Helper()
	return runCode(t, binary, "-config", filepath.Join(dir, "dkvehicled.toml"), "-check-store")
}

// dkctlStoreCheck runs the real dkctl store check against a daemon.
func dkctlStoreCheck(t testing.TB, in *instance) (int, string) {
	t.Helper()
	dkctl, err := dkctlBinary()
	if err != nil {
		t.Fatal(err)
	}
	return runCode(t, dkctl, "-socket", in.socket(), "store", "check")
}

// TestCheckStore: -check-store refuses a store a daemon holds, finds a
// consistent store consistent, and names each problem of a damaged one (exit
// status 1); the running daemon's store.check and dkctl store check agree.
func TestCheckStore(t *testing.T) {
	dir := newDir(t, crashConfig)
	in := start(t, dir)
	c := in.client()
	owner := setupOwner(t, c)
	expect(t, tap(t, c, "owner", "dashboard"), "allowed", "engine_start", "standard", "") // 7 slots provisioned

	if code, out := checkStoreFlag(t, dir); code != 1 || !strings.Contains(out, "another dkvehicled") {
		t.Fatalf("-check-store beside the daemon: exit %d\n%s", code, out)
	}
	if r := call[control.StoreCheck](t, c, control.VerbStoreCheck, nil); len(r.Problems) != 0 || r.Keys != 1 || r.Slots != 8 ||
		r.Path != filepath.Join(dir, "store.db") {
		t.Fatalf("store.check: %+v", r)
	}
	if code, out := dkctlStoreCheck(t, in); code != 0 || !strings.HasPrefix(out, "store ok: 1 keys, 8 slots") {
		t.Fatalf("dkctl store check: exit %d\n%s", code, out)
	}
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if code, out := checkStoreFlag(t, dir); code != 0 || !strings.Contains(out, "store ok: 1 keys, 8 slots") {
		t.Fatalf("-check-store on a consistent store: exit %d\n%s", code, out)
	}

	// Damage: the owner's slot loses its binding.
	s, err := keystore.Open(filepath.Join(dir, "store.db"), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var slot []byte
	err = s.Update(func(tx *keystore.Tx) error {
		snap, err := tx.Snapshot()
		if err != nil {
			return err
		}
		for _, sl := range snap.Slots {
			if sl.Entry == 0 {
				sl.BoundEndpoint, slot = nil, sl.ID
			}
		}
		return tx.Restore(snap)
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("slot %x: bound to nothing", slot),
		fmt.Sprintf("endpoint %s: slot %x is not bound to it", owner.KeyID, slot),
	}
	code, out := checkStoreFlag(t, dir)
	if code != 1 || !strings.Contains(out, "dkvehicled: store problem: "+want[0]+"\n") ||
		!strings.Contains(out, "dkvehicled: store problem: "+want[1]+"\n") || !strings.Contains(out, ": 2 problem(s)\n") {
		t.Fatalf("-check-store on a damaged store: exit %d\n%s", code, out)
	}
	// The daemon starts on it; its check names the same problems.
	in = start(t, dir)
	if r := call[control.StoreCheck](t, in.client(), control.VerbStoreCheck, nil); strings.Join(r.Problems, "\n") != strings.Join(want, "\n") {
		t.Fatalf("store.check on a damaged store: %q, want %q", r.Problems, want)
	}
	if code, out := dkctlStoreCheck(t, in); code != 1 || out != want[0]+"\n"+want[1]+"\n"+"dkctl: store_inconsistent: 2 problem(s) in "+filepath.Join(dir, "store.db")+"\n" {
		t.Fatalf("dkctl store check on a damaged store: exit %d\n%s", code, out)
	}
}

// crashOps is the length of the crash test's run of operations.
const crashOps = 1000

// crashFriendPhones is the size of the crash test's pool of friend phones: a
// revoked friend's phone gets a new share, so the phones file stays small.
const crashFriendPhones = 6

// crashWorld is the crash test's daemon and what it acknowledged.
type crashWorld struct {
	t   *testing.T
	rng *rand.Rand
	dir string
	in  *instance
	c   *control.Client

	owner   string // the owner's key
	friends []*crashFriend
	// stored and terminated are the friend keys the daemon must have, and
	// those it must have terminated: what it acknowledged, and what a
	// restart showed of an interrupted operation. revoked are the
	// revocations it acknowledged, which the audit log must name.
	stored, terminated, revoked map[string]bool
	// fresh holds the keys whose last Kpersistent write was acknowledged,
	// with nothing in flight since: phone and vehicle hold the same
	// Kpersistent, so the key's next door tap takes the fast path.
	fresh map[string]bool
	// shareable is how many slot entries the owner's phone has left to
	// share (-1: unknown, an operation on them was interrupted).
	shareable int

	acked     map[string]int // acknowledged operations by kind
	refills   int            // owner dashboard taps refilling the slots to share
	checkTaps int            // door taps checking the keys after a restart
}

// crashFriend is one phone of the pool.
type crashFriend struct {
	phone  string
	key    string // its key as its saved state holds it ("" before a share)
	active bool   // the key is stored and active
}

// Operation kinds.
const (
	opFirstUse = "friend first use"
	opRevoke   = "revocation"
	opStandard = "standard tap"
)

// crashCall is one control call. An error answer fails the test; a lost
// connection (the daemon was killed) is returned.
func crashCall[T any](w *crashWorld, verb string, args any) (T, error) {
	w.t.Helper()
	var out T
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := w.c.Call(ctx, verb, args, &out)
	if ce, ok := errors.AsType[*control.Error](err); ok {
		w.t.Fatalf("%s %+v: the daemon answered %v", verb, args, ce)
	}
	return out, err
}

// standardTap lays a phone on the dashboard: a standard transaction, which
// writes a new Kpersistent, and engine start.
func (w *crashWorld) standardTap(phone, key string) error {
	w.t.Helper()
	delete(w.fresh, key)
	if key == w.owner {
		w.shareable = -1
	}
	ev, err := crashCall[control.Event](w, control.VerbSimTap, control.SimPlaceArgs{Phone: phone, Reader: "dashboard"})
	if err != nil {
		return err
	}
	if ev.Result != "allowed" || ev.Path != "standard" || ev.KeyID != key {
		w.t.Fatalf("%s at the dashboard: %s path %s key %s (%s)", phone, ev.Result, ev.Path, ev.KeyID, ev.Detail)
	}
	w.fresh[key] = true
	if key == w.owner {
		w.shareable = wire.Entries - 1 // the tap refilled every entry but the owner's own
	}
	return nil
}

// refill lays the owner's phone on the dashboard, which refills every slot
// entry it shared.
func (w *crashWorld) refill() error {
	w.t.Helper()
	w.refills++
	return w.standardTap("owner", w.owner)
}

// share has the owner share a key with f's phone, refilling the owner's
// entries first when it has shared them all. (A share refused for want of
// an entry would leave f's phone holding an invitation, and the simulated
// phone installs its oldest invitation when the next share arrives: a key
// the share does not name.)
func (w *crashWorld) share(f *crashFriend) (control.SimShare, error) {
	w.t.Helper()
	if w.shareable <= 0 {
		if err := w.refill(); err != nil {
			return control.SimShare{}, err
		}
	}
	w.shareable = -1
	sh, err := crashCall[control.SimShare](w, control.VerbSimShare, control.SimShareArgs{From: "owner", To: f.phone, Profile: 2, Name: f.phone})
	if err == nil {
		w.shareable = wire.Entries - 1 - sh.MovedEntry // entries go from the lowest
	}
	return sh, err
}

// firstUse shares a key with f's phone and taps it at the door: the vehicle
// stores the friend's key, its Kpersistent and the slot binding together.
func (w *crashWorld) firstUse(f *crashFriend) error {
	w.t.Helper()
	sh, err := w.share(f)
	if err != nil {
		return err
	}
	f.key = sh.FriendKey
	ev, err := crashCall[control.Event](w, control.VerbSimTap, control.SimPlaceArgs{Phone: f.phone, Reader: "door"})
	if err != nil {
		return err
	}
	if ev.Result != "allowed" || !ev.FirstUse || ev.Path != "standard+friend_first_use" || ev.KeyID != f.key {
		w.t.Fatalf("first use of %s: %s path %s key %s (%s)", f.phone, ev.Result, ev.Path, ev.KeyID, ev.Detail)
	}
	f.active, w.stored[f.key], w.fresh[f.key] = true, true, true
	return nil
}

// revoke revokes f's key.
func (w *crashWorld) revoke(f *crashFriend) error {
	w.t.Helper()
	delete(w.fresh, f.key)
	k, err := crashCall[control.Key](w, control.VerbKeysRevoke, control.KeyArgs{KeyID: f.key})
	if err != nil {
		return err
	}
	if k.State != "terminated" || k.SlotState != "revoked" {
		w.t.Fatalf("revoked %+v", k)
	}
	f.active, w.terminated[f.key], w.revoked[f.key] = false, true, true
	return nil
}

// pick chooses the next operation: a friend's first use, a revocation or a
// standard tap (of an active friend, or of the owner when f is nil).
func (w *crashWorld) pick() (string, *crashFriend) {
	var idle, active []*crashFriend
	for _, f := range w.friends {
		if f.active {
			active = append(active, f)
		} else {
			idle = append(idle, f)
		}
	}
	switch r := w.rng.IntN(10); {
	case r < 4 && len(idle) > 0:
		return opFirstUse, idle[w.rng.IntN(len(idle))]
	case r < 6 && len(active) > 0:
		return opRevoke, active[w.rng.IntN(len(active))]
	case r < 9 && len(active) > 0:
		return opStandard, active[w.rng.IntN(len(active))]
	}
	return opStandard, nil
}

func (w *crashWorld) do(kind string, f *crashFriend) error {
	switch {
	case kind == opFirstUse:
		return w.firstUse(f)
	case kind == opRevoke:
		return w.revoke(f)
	case f == nil:
		return w.standardTap("owner", w.owner)
	}
	return w.standardTap(f.phone, f.key)
}

// restart checks the store of the killed daemon, starts a new one, and
// checks that it has everything acknowledged. inflight is the friend of the
// operation the kill interrupted (nil: none, or the owner's).
func (w *crashWorld) restart(inflight *crashFriend) {
	w.t.Helper()
	if code, out := checkStoreFlag(w.t, w.dir); code != 0 || !strings.Contains(out, "store ok") {
		w.t.Fatalf("-check-store after the kill: exit %d\n%s", code, out)
	}
	w.in = start(w.t, w.dir)
	w.c = w.in.client()
	if r := call[control.StoreCheck](w.t, w.c, control.VerbStoreCheck, nil); len(r.Problems) > 0 {
		w.t.Fatalf("store.check after the kill: %q", r.Problems)
	}
	if code, out := dkctlStoreCheck(w.t, w.in); code != 0 || !strings.HasPrefix(out, "store ok") {
		w.t.Fatalf("dkctl store check after the kill: exit %d\n%s", code, out)
	}

	keys := map[string]control.Key{}
	for _, k := range call[[]control.Key](w.t, w.c, control.VerbKeysList, nil) {
		keys[k.KeyID] = k
	}
	if k := keys[w.owner]; k.State != "active" || k.Role != "owner" || !k.HasKpersistent {
		w.t.Fatalf("owner after the kill: %+v", k)
	}
	for id := range w.stored {
		k, ok := keys[id]
		switch {
		case !ok:
			w.t.Fatalf("acknowledged first use of %s lost", id)
		case k.Role != "friend" || !k.HasKpersistent:
			w.t.Fatalf("acknowledged first use stored as %+v", k)
		case w.terminated[id]:
			if k.State != "terminated" || k.SlotState != "revoked" {
				w.t.Fatalf("revocation of %s lost: %+v", id, k)
			}
		case inflight != nil && inflight.key == id:
			// Its revocation may or may not have happened.
		case k.State != "active" || k.SlotState != "bound":
			w.t.Fatalf("acknowledged first use of %s: now %+v", id, k)
		}
	}
	if inflight != nil {
		// Which key the phone holds, and whether the vehicle stored it
		// and still has it active, depends on where the kill landed.
		inflight.key = ""
		for _, p := range call[[]control.SimPhone](w.t, w.c, control.VerbSimPhones, nil) {
			if p.Name == inflight.phone && len(p.Keys) == 1 {
				inflight.key = p.Keys[0]
			}
		}
		k, ok := keys[inflight.key]
		inflight.active = ok && k.State == "active"
		if ok && (k.Role != "friend" || !k.HasKpersistent || (k.State == "active") != (k.SlotState == "bound")) {
			w.t.Fatalf("interrupted operation left %+v", k)
		}
		// What this restart found must stay.
		if ok {
			w.stored[inflight.key] = true
			w.terminated[inflight.key] = !inflight.active
		}
	}

	// Every active key opens the door: on the fast path when its last
	// Kpersistent write was acknowledged. Afterwards phone and vehicle
	// agree on every Kpersistent.
	w.doorTap("owner", w.owner)
	for _, f := range w.friends {
		if f.active {
			w.doorTap(f.phone, f.key)
		}
	}
}

// doorTap checks one active key at the door after a restart.
func (w *crashWorld) doorTap(phone, key string) {
	w.t.Helper()
	ev := call[control.Event](w.t, w.c, control.VerbSimTap, control.SimPlaceArgs{Phone: phone, Reader: "door"})
	if ev.Result != "allowed" || ev.KeyID != key || (w.fresh[key] && ev.Path != "fast") {
		w.t.Fatalf("%s at the door after a restart (fresh Kpersistent: %v): %s path %s key %s (%s)",
			phone, w.fresh[key], ev.Result, ev.Path, ev.KeyID, ev.Detail)
	}
	w.fresh[key] = true
	w.checkTaps++
}

// crashKill sends SIGKILL to p after a while; the channel closes once sent.
func crashKill(p *os.Process, after time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(after)
		p.Signal(syscall.SIGKILL)
	}()
	return done
}

// TestCrashDuringOperations runs crashOps store-changing operations (friend
// first uses, revocations, standard taps writing Kpersistent) and kills the
// daemon with SIGKILL 20 to 40 times, at random moments, from another
// goroutine. After each kill the store must pass -check-store; the restarted
// daemon must have everything it acknowledged (and pass store.check and dkctl
// store check), and every active key must open the door, on the fast path
// when its last Kpersistent write was acknowledged. What was in flight may
// or may not be there, but consistently.
func TestCrashDuringOperations(t *testing.T) {
	began := time.Now()
	seed := *crashSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("seed %d (rerun with -crash.seed=%d)", seed, seed)
	w := &crashWorld{t: t, rng: rand.New(rand.NewPCG(uint64(seed), 0)), dir: newDir(t, crashConfig),
		stored: map[string]bool{}, terminated: map[string]bool{}, revoked: map[string]bool{}, fresh: map[string]bool{}, acked: map[string]int{}}
	w.in = start(t, w.dir)
	w.c = w.in.client()
	w.owner = setupOwner(t, w.c).KeyID
	if err := w.standardTap("owner", w.owner); err != nil {
		t.Fatal(err)
	}
	for i := range crashFriendPhones {
		f := &crashFriend{phone: fmt.Sprintf("friend%d", i)}
		call[control.SimPhone](t, w.c, control.VerbSimNewPhone, control.SimPhoneArgs{Phone: f.phone})
		w.friends = append(w.friends, f)
	}

	kills := map[int]bool{}
	for n := 20 + w.rng.IntN(21); len(kills) < n; {
		kills[w.rng.IntN(crashOps)] = true
	}
	// The running mean duration of each kind of operation.
	avg := map[string]time.Duration{opFirstUse: 20 * time.Millisecond, opRevoke: 20 * time.Millisecond, opStandard: 20 * time.Millisecond}
	midOp := 0
	for i := range crashOps {
		kind, f := w.pick()
		var killed <-chan struct{}
		if kills[i] {
			// Within the operation's mean duration: most kills land inside it.
			killed = crashKill(w.in.cmd.Process, time.Duration(w.rng.Int64N(int64(avg[kind])+1)))
		}
		t0 := time.Now()
		err := w.do(kind, f)
		if killed == nil {
			if err != nil {
				t.Fatalf("operation %d (%s): %v", i, kind, err)
			}
			avg[kind] = (7*avg[kind] + time.Since(t0)) / 8
			w.acked[kind]++
			continue
		}
		<-killed
		<-w.in.done
		var inflight *crashFriend
		if err == nil {
			w.acked[kind]++
		} else {
			midOp++
			inflight = f
		}
		w.restart(inflight)
	}

	audit := call[[]control.AuditEntry](t, w.c, control.VerbAudit, control.AuditArgs{Limit: 10000})
	revokeEvents := map[string]bool{}
	for _, a := range audit {
		if a.Event.Type == "key" && a.Event.Action == "revoke" {
			revokeEvents[a.Event.KeyID] = true
		}
	}
	for id := range w.revoked {
		if !revokeEvents[id] {
			t.Errorf("acknowledged revocation of %s is not in the audit log", id)
		}
	}
	if code := w.in.stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	if code, out := checkStoreFlag(t, w.dir); code != 0 || !strings.Contains(out, "store ok") {
		t.Fatalf("-check-store at the end: exit %d\n%s", code, out)
	}
	t.Logf("%d operations, %d acknowledged (%d %ss, %d %ss, %d %ss); %d kills, %d of them mid-operation; "+
		"%d owner refills, %d door taps checking keys after restarts; %d friend keys stored; %v",
		crashOps, w.acked[opFirstUse]+w.acked[opRevoke]+w.acked[opStandard], w.acked[opFirstUse], opFirstUse,
		w.acked[opRevoke], opRevoke, w.acked[opStandard], opStandard, len(kills), midOp, w.refills, w.checkTaps,
		len(w.stored), time.Since(began).Round(100*time.Millisecond))
}
