//go:build pcsc

package main

import (
	"testing"

	"github.com/dkvehicled/dkvehicled/control"
)

// BenchmarkPCSCAuthTimes measures, over pcscd and vpcd with a dkendpoint
// phone, the phase times of AUTH0 and AUTH1 as the daemon's events carry
// them (see BenchmarkSimAuthTimes): the 10th, 50th and 90th percentiles and
// the maximum in ms (docs/relay.md).
//
//	go test -tags pcsc -run '^$' -bench PCSCAuthTimes -benchtime 100x ./cmd/dkvehicled/
func BenchmarkPCSCAuthTimes(b *testing.B) {
	startPCSCD(b)
	dir := pcscDir(b)
	in := start(b, dir)
	c := in.client()
	waitReaders(b, c, true)
	owner := newPhone(b, c, dir, "owner")
	pairOwner(b, c, owner)
	owner.tap(1) // provisioning and Kpersistent
	for _, bc := range []struct {
		name   string
		reader int
	}{{"fast_door", 0}, {"standard_dashboard", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			var evs []control.Event
			for b.Loop() {
				seq := lastSeq(b, c)
				owner.tap(bc.reader)
				ev := lastTap(b, c, []string{"door", "dashboard"}[bc.reader], seq)
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
