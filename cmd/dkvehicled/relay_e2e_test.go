package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
)

// relayBounds sets the APDU and transaction timeouts wide and bounds AUTH0 at
// 600 ms and AUTH1 at 200 ms, far from the simulated phones' own times and
// from the latencies the test gives them.
func relayBounds(s string) string {
	return strings.Replace(s, "apdu = \"500ms\"\nlong = \"1s\"\ntransaction = \"2s\"",
		"apdu = \"1s\"\nlong = \"1s\"\ntransaction = \"5s\"\nauth0_max = \"600ms\"\nauth1_max = \"200ms\"", 1)
}

// TestRelayBounds: with [timeouts] auth0_max and auth1_max set, a phone whose
// answers come under the bounds is allowed; one whose AUTH1 or AUTH0 answer
// comes later (a relay adds time) is refused with CONTROL FLOW 00 07 and a
// detail naming the time and the bound, and nothing is actuated.
func TestRelayBounds(t *testing.T) {
	dir := newDir(t, relayBounds)
	if b, _ := os.ReadFile(filepath.Join(dir, "dkvehicled.toml")); !strings.Contains(string(b), `auth1_max = "200ms"`) {
		t.Fatal("configs/simulator.toml has no [timeouts] block to edit")
	}
	in := start(t, dir)
	c := in.client()
	setupOwner(t, c)
	slowTap := func(reader string, latencyMS int) control.Event {
		t.Helper()
		return call[control.Event](t, c, control.VerbSimTap, control.SimPlaceArgs{Phone: "owner", Reader: reader, LatencyMS: latencyMS})
	}
	expect(t, slowTap("door", 0), "allowed", "unlock", "standard", "")
	expect(t, slowTap("door", 100), "allowed", "lock", "fast", "")                  // AUTH0 in ~100 ms
	expect(t, slowTap("dashboard", 100), "allowed", "engine_start", "standard", "") // AUTH1 in ~100 ms
	keysBefore := keysJSON(t, c)

	for _, tc := range []struct {
		reader, action, path string
		latencyMS            int
		detail               string
	}{
		{"dashboard", "engine_start", "standard", 300, `^AUTH1 answered in [0-9.]+ ms, over the 200 ms bound: possible relay$`},
		{"door", "unlock", "none", 700, `^AUTH0 answered in [0-9.]+ ms, over the 600 ms bound: possible relay$`},
	} {
		ev := slowTap(tc.reader, tc.latencyMS)
		expect(t, ev, "error", tc.action, tc.path, "timeout")
		if !regexp.MustCompile(tc.detail).MatchString(ev.Detail) {
			t.Fatalf("%s tap %d ms late: detail %q", tc.reader, tc.latencyMS, ev.Detail)
		}
	}
	if keys := keysJSON(t, c); keys != keysBefore {
		t.Fatalf("keys changed by refused taps:\n%s\n%s", keysBefore, keys)
	}
	// The recorder logged one action per allowed tap, none for the refused.
	log := in.log()
	for _, a := range []string{`msg="hal: unlock"`, `msg="hal: lock"`, `msg="hal: engine`} {
		if n := strings.Count(log, a); n != 1 {
			t.Fatalf("%d %s logged, want 1:\n%s", n, a, log)
		}
	}
	// The phone renewed its Kpersistent when it answered the refused AUTH1
	// and the vehicle did not: the next door tap takes the standard path.
	expect(t, slowTap("door", 0), "allowed", "unlock", "standard", "")
}

// BenchmarkSimAuthTimes measures, on the daemon's simulator, the phase times
// of AUTH0 and AUTH1 as the daemon's events carry them (the command sent to
// its answer received, plus the vehicle's own work before sending: a few µs
// for AUTH0 with the ephemeral key prepared, ECDH, key derivation and the
// signature for AUTH1). It reports the 10th, 50th and 90th percentiles and
// the maximum in ms (docs/relay.md):
//
//	go test -run '^$' -bench SimAuthTimes -benchtime 200x ./cmd/dkvehicled/
func BenchmarkSimAuthTimes(b *testing.B) {
	dir := newDir(b, nil)
	in := start(b, dir)
	c := in.client()
	setupOwner(b, c)
	call[control.Event](b, c, control.VerbSimTap, control.SimPlaceArgs{Phone: "owner", Reader: "dashboard"}) // provisioning
	for _, bc := range []struct{ name, reader string }{{"fast_door", "door"}, {"standard_dashboard", "dashboard"}} {
		b.Run(bc.name, func(b *testing.B) {
			var evs []control.Event
			for b.Loop() {
				ev := call[control.Event](b, c, control.VerbSimTap, control.SimPlaceArgs{Phone: "owner", Reader: bc.reader})
				if ev.Result != "allowed" {
					b.Fatalf("tap %s: %s (phases %+v)", ev.Result, ev.Detail, ev.Phases)
				}
				evs = append(evs, ev)
			}
			reportPhases(b, evs)
		})
	}
	in.stop()
}

// keysJSON is the daemon's key list (last use, Kpersistent present, states),
// to compare before and after.
func keysJSON(t testing.TB, c *control.Client) string {
	t.Helper()
	b, err := json.Marshal(call[[]control.Key](t, c, control.VerbKeysList, nil))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// reportPhases reports the spread of the auth0 and auth1 phases of events.
func reportPhases(b *testing.B, evs []control.Event) {
	for _, name := range []string{"auth0", "auth1"} {
		var ms []float64
		for _, ev := range evs {
			for _, p := range ev.Phases {
				if p.Name == name {
					ms = append(ms, float64(time.Duration(p.Time).Microseconds())/1000)
				}
			}
		}
		if len(ms) == 0 {
			continue
		}
		slices.Sort(ms)
		for _, q := range []struct {
			name string
			at   float64
		}{{"p10", 0.1}, {"p50", 0.5}, {"p90", 0.9}, {"max", 1}} {
			b.ReportMetric(ms[int(q.at*float64(len(ms)-1))], name+"-"+q.name+"-ms")
		}
	}
}
