package daemon

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/keystore"
)

func TestBusNeverBlocksAndCountsDrops(t *testing.T) {
	st, err := keystore.Open(filepath.Join(t.TempDir(), "s.db"), keystore.Options{NoSync: true, AuditLimit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := newBus(st, time.Now)
	slow, fast := b.subscribe(), b.subscribe()
	got := 0
	done := make(chan struct{})
	go func() {
		for range fast.Events() {
			got++
		}
		close(done)
	}()
	n := subscriberBuffer + 50
	for i := range n {
		if _, err := b.publish(control.Event{Type: "tap", Detail: string(rune('a' + i%26))}); err != nil {
			t.Fatal(err)
		}
	}
	if slow.Dropped() != 50 {
		t.Fatalf("slow subscriber dropped %d, want 50", slow.Dropped())
	}
	fast.Stop()
	<-done
	if got+int(fast.Dropped()) != n {
		t.Fatalf("fast subscriber got %d and dropped %d of %d", got, fast.Dropped(), n)
	}
	b.close()
	if _, ok := <-slow.Events(); !ok {
		t.Fatal("buffered events lost at close")
	}
	slow.Stop() // after close: harmless
	var recs []keystore.AuditRecord
	_ = st.View(func(tx *keystore.Tx) (err error) { recs, err = tx.Audit(n + 10); return err })
	if len(recs) != n || !strings.Contains(string(recs[0].Data), `"seq":1`) {
		t.Fatalf("%d audit records", len(recs))
	}
}

func TestMetricsText(t *testing.T) {
	m := newMetrics()
	m.tap("door", "allowed", "fast", 300*time.Microsecond, map[string]time.Duration{"auth0": 80 * time.Microsecond})
	m.tap("door", "denied", "standard", 3*time.Millisecond, nil)
	m.readerError("dashboard")
	txt := m.text(map[string]gaugeFamily{"dkvehicled_reader_up": {help: "up", values: []gauge{{labels: labels("reader", "door"), value: 1}}}})
	for _, want := range []string{
		"# TYPE dkvehicled_taps_total counter",
		`dkvehicled_taps_total{reader="door",result="allowed"} 1`,
		`dkvehicled_tap_seconds_bucket{reader="door",path="fast",le="0.00025"} 0`,
		`dkvehicled_tap_seconds_bucket{reader="door",path="fast",le="0.0005"} 1`,
		`dkvehicled_tap_seconds_bucket{reader="door",path="fast",le="+Inf"} 1`,
		`dkvehicled_tap_seconds_count{reader="door",path="standard"} 1`,
		`dkvehicled_tap_phase_seconds_bucket{reader="door",phase="auth0",le="0.0001"} 1`,

		`dkvehicled_reader_up{reader="door"} 1`,
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("missing %s in\n%s", want, txt)
		}
	}
}
