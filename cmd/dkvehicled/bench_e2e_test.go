package main

import (
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/enrol"
	"github.com/dkvehicled/dkvehicled/immobilizer"
	"github.com/dkvehicled/dkvehicled/internal/pty"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/reader/pn532/pn532sim"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// End-to-end figures of the daemon as it ships (benchmarks build it without
// the race detector). BENCHMARKS.md quotes them:
//
//	go test -run '^$' -bench 'Startup|Idle|PN532Tap' -benchtime 1x ./cmd/dkvehicled/

// seedKeys fills a new store in dir with an owner and n-1 friends, each
// with its bound slot and a Kpersistent, as years of use would leave it.
func seedKeys(tb testing.TB, dir string, n int) {
	tb.Helper()
	st, err := keystore.Open(filepath.Join(dir, "store.db"), keystore.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	ownerKey, err := keys.NewSigningKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	ownerPK := keys.EncodePoint(&ownerKey.PublicKey)
	owner := keys.KeyIDOf(ownerPK)
	l := wire.DefaultLayout
	err = st.Update(func(tx *keystore.Tx) error {
		if _, err := enrol.Owner(tx, rand.Reader, now, l, enrol.OwnerRecord{PublicKey: ownerPK, FriendlyName: "owner"}); err != nil {
			return err
		}
		for i := 1; i < n; i++ {
			k, err := keys.NewSigningKey(rand.Reader)
			if err != nil {
				return err
			}
			pk := keys.EncodePoint(&k.PublicKey)
			id := keys.KeyIDOf(pk)
			slot, err := immobilizer.Issue(tx, rand.Reader, l.SlotIDLen, l.TokenLen, owner, 1+i%7)
			if err != nil {
				return err
			}
			kp := make([]byte, 32)
			rand.Read(kp)
			if err := tx.PutEndpoint(&keystore.Endpoint{KeyID: id, PublicKey: pk, SlotID: slot.ID, Role: keystore.RoleFriend, Profile: 2,
				State: keystore.StateActive, Kpersistent: kp, Created: now, LastUsed: now.Add(-time.Duration(i) * time.Second)}); err != nil {
				return err
			}
			if err := immobilizer.Bind(tx, slot, owner, id); err != nil {
				return err
			}
		}
		for _, p := range tx.Check() {
			tb.Errorf("seeded store: %v", p)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// readyAfter starts the daemon in dir with a notify socket and returns the
// time from exec to its READY=1, then stops it.
func readyAfter(b *testing.B, dir string) time.Duration {
	sock := filepath.Join(dir, "notify.sock")
	os.Remove(sock)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	cmd := exec.Command(binary, "-config", filepath.Join(dir, "dkvehicled.toml"))
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			b.Errorf("daemon exit: %v", err)
		}
	}()
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			b.Fatalf("no READY=1: %v", err)
		}
		if slices.Contains(strings.Split(string(buf[:n]), "\n"), "READY=1") {
			return time.Since(start)
		}
	}
}

// BenchmarkStartup is the time from exec to READY (store open, identity
// checked, candidate cache built, readers started) with 1000 stored keys.
func BenchmarkStartup(b *testing.B) {
	dir := newDir(b, nil)
	seedKeys(b, dir, 1000)
	var ds []time.Duration
	for b.Loop() {
		ds = append(ds, readyAfter(b, dir))
	}
	reportMS(b, "ready", durationsMS(ds))
}

// durationsMS converts ds to milliseconds.
func durationsMS(ds []time.Duration) []float64 {
	ms := make([]float64, len(ds))
	for i, d := range ds {
		ms[i] = float64(d) / float64(time.Millisecond)
	}
	return ms
}

// reportMS reports the median of ms as name-ms and its spread as the 10th
// and 90th percentiles, name-p10-ms and name-p90-ms.
func reportMS(b *testing.B, name string, ms []float64) {
	if len(ms) == 0 {
		return
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	at := func(q float64) float64 { return s[int(q*float64(len(s)-1)+0.5)] }
	b.ReportMetric(s[len(s)/2], name+"-ms")
	b.ReportMetric(at(0.1), name+"-p10-ms")
	b.ReportMetric(at(0.9), name+"-p90-ms")
}

// procStat reads a process's CPU time (user + system) and resident set.
func procStat(b *testing.B, pid int) (cpu time.Duration, rssKiB int) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKiB, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, rssKiB // USER_HZ = 100
}

// BenchmarkIdle is the daemon's CPU and memory with two PN532 readers
// polling (door and dashboard, each on its own serial line to a simulated
// chip, at the shipped 125 ms poll interval) and no phone, over 30 s.
func BenchmarkIdle(b *testing.B) {
	var devs []string
	for range 2 {
		master, slave, err := pty.Open()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { slave.Close() })
		pn532Serve(b, pn532sim.New(), master)
		devs = append(devs, slave.Name())
	}
	dir := newDir(b, func(s string) string {
		s = pn532Reader(b, s, "door", devs[0], "125ms")
		return pn532Reader(b, s, "dashboard", devs[1], "125ms")
	})
	in := start(b, dir)
	c := in.client()
	waitHealthy(b, c)
	pid := in.cmd.Process.Pid
	const window = 30 * time.Second
	for b.Loop() {
		cpu0, _ := procStat(b, pid)
		t0 := time.Now()
		time.Sleep(window)
		cpu1, rss := procStat(b, pid)
		b.ReportMetric(100*float64(cpu1-cpu0)/float64(time.Since(t0)), "cpu-%")
		b.ReportMetric(float64(rss)/1024, "rss-MiB")
	}
	st := call[control.Status](b, c, control.VerbStatus, nil)
	for _, r := range st.Readers {
		if !r.OK || r.Errors != 0 {
			b.Fatalf("reader %+v", r)
		}
	}
	if code := in.stop(); code != 0 {
		b.Fatalf("exit code %d", code)
	}
}

// waitHealthy waits until every reader of the daemon is healthy.
func waitHealthy(tb testing.TB, c *control.Client) {
	tb.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ok := true
		for _, r := range call[control.Status](tb, c, control.VerbStatus, nil).Readers {
			ok = ok && r.OK
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("readers not healthy")
		}
	}
}

// BenchmarkPN532Tap is a fast door tap through the PN532 driver over a real
// tty to a simulated chip: from the phone entering the field to the daemon's
// event (the poll interval, 50 ms here, dominates), and the transaction
// itself as the daemon measured it (SELECT to decision, fsync'd store).
func BenchmarkPN532Tap(b *testing.B) {
	master, slave, err := pty.Open()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { slave.Close() })
	chip := pn532sim.New()
	pn532Serve(b, chip, master)
	dir := pn532Dir(b, slave.Name(), "door")
	in := start(b, dir)
	c := in.client()
	setupOwner(b, c)
	expect(b, tap(b, c, "owner", "dashboard"), "allowed", "engine_start", "standard", "")
	if code := in.stop(); code != 0 {
		b.Fatalf("exit code %d", code)
	}
	phone := pn532TakePhone(b, filepath.Join(dir, "sim-phones.json"), "owner")
	in = start(b, dir)
	c = in.client()
	taps := pn532Taps(b, in, "door")
	waitHealthy(b, c)
	var present, decided []time.Duration
	for b.Loop() {
		t0 := time.Now()
		chip.Place(phone.Transceive)
		ev := pn532NextTap(b, taps, in)
		present = append(present, time.Since(t0))
		decided = append(decided, time.Duration(ev.Total))
		if ev.Result != "allowed" || ev.Path != "fast" {
			b.Fatalf("tap %+v", ev)
		}
		pn532Remove(b, chip, phone)
	}
	reportMS(b, "present-to-event", durationsMS(present))
	reportMS(b, "transaction", durationsMS(decided))
	if code := in.stop(); code != 0 {
		b.Fatalf("exit code %d", code)
	}
}
