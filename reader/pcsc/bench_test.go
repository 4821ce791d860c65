//go:build pcsc

package pcsc

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// BenchmarkTransceive measures the raw round trip of one APDU through
// libpcsclite, pcscd, the vpcd driver and the virtual card's TCP connection
// (TCP_NODELAY, TCP_QUICKACK): the floor of the PC/SC stack per APDU. The
// card runs in a process of its own, as a phone would be apart from the
// daemon. It reports the median and the 99th percentile besides the mean.
//
//	go test -tags pcsc -run '^$' -bench Transceive ./reader/pcsc/
func BenchmarkTransceive(b *testing.B) {
	m, err := NewManager()
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	r, err := m.Open(Options{Reader: slot0})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()

	card := exec.Command(os.Args[0], "-test.run=^$")
	card.Env = append(os.Environ(), cardProcessEnv+"=1")
	card.Stderr = os.Stderr
	if err := card.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		card.Process.Kill()
		card.Wait()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := r.WaitCard(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	var laps []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := c.Transceive(context.Background(), selectCmd); err != nil {
			b.Fatal(err)
		}
		laps = append(laps, time.Since(start))
	}
	slices.Sort(laps)
	b.ReportMetric(float64(laps[len(laps)/2])/1e3, "median-µs")
	b.ReportMetric(float64(laps[len(laps)*99/100])/1e3, "p99-µs")
}
