package daemon

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Buckets of the latency histograms, in seconds: from 50 µs (a simulated
// tap's phases) to 5 s (beyond a transaction's limit).
var latencyBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

type histogram struct {
	counts []uint64 // per bucket, not cumulative
	sum    float64
	n      uint64
}

func (h *histogram) observe(v float64) {
	if h.counts == nil {
		h.counts = make([]uint64, len(latencyBuckets))
	}
	for i, b := range latencyBuckets {
		if v <= b {
			h.counts[i]++
			break
		}
	}
	h.sum += v
	h.n++
}

// metrics are the daemon's counters and histograms, exposed in the
// Prometheus text format through the control socket.
type metrics struct {
	mu           sync.Mutex
	taps         map[[2]string]uint64     // reader, result
	tapLatency   map[[2]string]*histogram // reader, path
	phaseLatency map[[2]string]*histogram // reader, phase
	readerErrors map[string]uint64        // failures the reader loops saw
	actuations   map[[2]string]uint64     // action, outcome (ok / failed)
	pairings     map[string]uint64        // result
}

func newMetrics() *metrics {
	return &metrics{
		taps: map[[2]string]uint64{}, tapLatency: map[[2]string]*histogram{},
		phaseLatency: map[[2]string]*histogram{}, readerErrors: map[string]uint64{}, actuations: map[[2]string]uint64{},
		pairings: map[string]uint64{},
	}
}

func observe(m map[[2]string]*histogram, k [2]string, d time.Duration) {
	h := m[k]
	if h == nil {
		h = &histogram{}
		m[k] = h
	}
	h.observe(d.Seconds())
}

func (m *metrics) tap(reader, result, path string, total time.Duration, phases map[string]time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.taps[[2]string{reader, result}]++
	observe(m.tapLatency, [2]string{reader, path}, total)
	for name, d := range phases {
		observe(m.phaseLatency, [2]string{reader, name}, d)
	}
}

func (m *metrics) pairing(result string) {
	m.mu.Lock()
	m.pairings[result]++
	m.mu.Unlock()
}

func (m *metrics) readerError(reader string) {
	m.mu.Lock()
	m.readerErrors[reader]++
	m.mu.Unlock()
}

func (m *metrics) actuation(action string, ok bool) {
	outcome := "ok"
	if !ok {
		outcome = "failed"
	}
	m.mu.Lock()
	m.actuations[[2]string{action, outcome}]++
	m.mu.Unlock()
}

// gauge is one value of a gauge family, written with the text.
type gauge struct {
	labels string
	value  float64
}

// text renders the metrics; gauges holds extra families (name -> help, values).
func (m *metrics) text(gauges map[string]gaugeFamily) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	counter := func(name, help string, vals map[string]uint64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
		for _, k := range sortedKeys(vals) {
			fmt.Fprintf(&b, "%s%s %d\n", name, k, vals[k])
		}
	}
	taps := map[string]uint64{}
	for k, v := range m.taps {
		taps[labels("reader", k[0], "result", k[1])] = v
	}
	counter("dkvehicled_taps_total", "Taps by reader and result (allowed, denied, error, no_key).", taps)
	acts := map[string]uint64{}
	for k, v := range m.actuations {
		acts[labels("action", k[0], "outcome", k[1])] = v
	}
	counter("dkvehicled_actuations_total", "Actuations by action and outcome.", acts)
	pairs := map[string]uint64{}
	for k, v := range m.pairings {
		pairs[labels("result", k)] = v
	}
	counter("dkvehicled_pairings_total", "Owner pairing attempts by result (paired, failed, error).", pairs)
	hist := func(name, help, l2 string, hs map[[2]string]*histogram) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
		keys := make([][2]string, 0, len(hs))
		for k := range hs {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i][0]+"\x00"+keys[i][1] < keys[j][0]+"\x00"+keys[j][1] })
		for _, k := range keys {
			h := hs[k]
			var cum uint64
			for i, ub := range latencyBuckets {
				cum += h.counts[i]
				fmt.Fprintf(&b, "%s_bucket%s %d\n", name, labels("reader", k[0], l2, k[1], "le", fmt.Sprint(ub)), cum)
			}
			fmt.Fprintf(&b, "%s_bucket%s %d\n", name, labels("reader", k[0], l2, k[1], "le", "+Inf"), h.n)
			fmt.Fprintf(&b, "%s_sum%s %g\n", name, labels("reader", k[0], l2, k[1]), h.sum)
			fmt.Fprintf(&b, "%s_count%s %d\n", name, labels("reader", k[0], l2, k[1]), h.n)
		}
	}
	hist("dkvehicled_tap_seconds", "Time from card present to decision, by reader and path.", "path", m.tapLatency)
	hist("dkvehicled_tap_phase_seconds", "Time spent in each phase of a tap.", "phase", m.phaseLatency)
	names := make([]string, 0, len(gauges))
	for n := range gauges {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g := gauges[n]
		typ := g.typ
		if typ == "" {
			typ = "gauge"
		}
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", n, g.help, n, typ)
		for _, v := range g.values {
			fmt.Fprintf(&b, "%s%s %g\n", n, v.labels, v.value)
		}
	}
	return b.String()
}

// gaugeFamily is a metric family computed when the metrics are read.
type gaugeFamily struct {
	typ    string // gauge (default) or counter
	help   string
	values []gauge
}

func labels(kv ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", kv[i], kv[i+1])
	}
	b.WriteByte('}')
	return b.String()
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
