package transaction_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/internal/pki"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/pairing"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// The physical floor of each flow: how long its bytes take on the air over
// ISO 14443-4 (type A), whatever the reader, the phone and the vehicle do.
// The model, stated so it can be checked:
//   - a frame is SOF, 9 bit periods per byte (8 data bits and parity) and
//     EOF: (2 + 9·bytes) bit periods of 128/fc, 64/fc or 32/fc at 106, 212
//     or 424 kbit/s (fc = 13.56 MHz);
//   - an APDU travels in I-blocks of PCB + INF + CRC_A (3 bytes around INF,
//     no CID, no NAD), at most fsc bytes each; a chained block is
//     acknowledged by an R(ACK) block (PCB + CRC_A);
//   - every frame is preceded by the minimum frame delay time, 1172/fc
//     (86.4 µs), in either direction: the phone and the vehicle are taken to
//     answer at once, so this is a floor, not an estimate.
// Activation (REQA, anticollision, SELECT, RATS/ATS: a few ms at 106 kbit/s)
// comes before the first APDU and is not counted.

const (
	fc  = 13.56e6
	fsc = 256 // frame size of phones and readers (FSCI/FSDI 8)
	fdt = 1172 / fc
)

// frameTime is one frame of n bytes at a bit rate of fc/div.
func frameTime(n int, div float64) float64 { return float64(2+9*n) * div / fc }

// blocksTime is an APDU of n bytes sent in I-blocks, with the receiver's
// R(ACK)s between chained blocks, each frame after its delay.
func blocksTime(n int, div float64) float64 {
	per := fsc - 3
	blocks := (n + per - 1) / per
	t := 0.0
	for i := 0; i < blocks; i++ {
		size := min(per, n-i*per)
		t += fdt + frameTime(size+3, div)
		if i < blocks-1 {
			t += fdt + frameTime(3, div) // R(ACK)
		}
	}
	return t
}

// exchange is the size of one command APDU and its response (data and SW).
type exchange struct{ cmd, resp int }

// airTime is the floor of a flow at fc/div.
func airTime(flow []exchange, div float64) time.Duration {
	t := 0.0
	for _, e := range flow {
		t += blocksTime(e.cmd, div) + blocksTime(e.resp, div)
	}
	return time.Duration(t * float64(time.Second))
}

// sizer records the size of every exchange of a card.
type sizer struct {
	card transactionCard
	flow []exchange
}

func (s *sizer) Transceive(ctx context.Context, c []byte) ([]byte, error) {
	r, err := s.card.Transceive(ctx, c)
	s.flow = append(s.flow, exchange{len(c), len(r)})
	return r, err
}

func TestAirTimeModel(t *testing.T) {
	// A 5-byte command and a 2-byte answer at 106 kbit/s: frames of 8 and
	// 5 bytes, (2+72)·128/fc + (2+45)·128/fc, plus two delays of 1172/fc.
	want := (float64(74*128+47*128) + 2*1172) / fc
	if got := airTime([]exchange{{5, 2}}, 128).Seconds(); fmt.Sprintf("%.9f", got) != fmt.Sprintf("%.9f", want) {
		t.Fatalf("air time %v s, want %v s", got, want)
	}
	// 300 bytes take two I-blocks (253 + 47) and one R(ACK).
	want = (3*1172 + float64((2+9*256)+(2+9*50)+(2+9*3))*128) / fc
	if got := blocksTime(300, 128); fmt.Sprintf("%.9f", got) != fmt.Sprintf("%.9f", want) {
		t.Fatalf("chained air time %v s, want %v s", got, want)
	}
}

// TestAirTime records the exchanges of every flow with real phones and
// prints their air-time floor at 106, 212 and 424 kbit/s (BENCHMARKS.md):
//
//	go test -run TestAirTime -v ./transaction/
func TestAirTime(t *testing.T) {
	w := newWorld(t, t.TempDir(), 31)
	owner, friend := w.phone(32), w.phone(33)
	w.enrolOwner(owner)
	flows := []struct {
		name string
		flow []exchange
	}{}
	run := func(name string, card *endpoint.Phone, role policy.Role, locked bool) {
		t.Helper()
		s := &sizer{card: card}
		if o := w.tap(s, role, locked); !o.Allowed() {
			t.Fatalf("%s: %s %s", name, o.Result, o.Detail)
		}
		flows = append(flows, struct {
			name string
			flow []exchange
		}{name, s.flow})
	}
	run("standard (door)", owner, policy.RoleDoor, true)
	run("fast (door)", owner, policy.RoleDoor, false)
	run("engine start, first (slots provisioned)", owner, policy.RoleDashboard, true)
	run("engine start (token check)", owner, policy.RoleDashboard, true)
	w.share(owner, friend, 2, "Alice")
	run("friend first use (door)", friend, policy.RoleDoor, true)

	// Owner pairing, with the bench PKI.
	vk := w.vehicle.Key
	dir := filepath.Join(t.TempDir(), "pki")
	if err := pki.Init(dir, rand.Reader, &vk.PublicKey, w.now); err != nil {
		t.Fatal(err)
	}
	b, err := pki.LoadBench(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := pki.NewVerifier(rand.Reader, "12345678", pki.MinScryptN)
	if err != nil {
		t.Fatal(err)
	}
	st, err := keystore.Open(filepath.Join(t.TempDir(), "p.db"), keystore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Update(func(tx *keystore.Tx) error { return tx.PutVerifier(v.Keystore(pairing.MaxAttempts)) }); err != nil {
		t.Fatal(err)
	}
	p, err := pairing.New(pairing.Config{
		Vehicle: pairing.Vehicle{Identifier: w.vehicle.Identifier, Versions: wire.CCC.Versions, Layout: wire.DefaultLayout,
			Brand: []byte{0, 1}, Certificate: b.Vehicle.Raw, Root: b.Root.Cert, OwnerName: "owner"},
		Store: st, Rand: rand.Reader, Now: time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	phone := endpoint.New(wire.CCC, wire.CCC.Versions, wire.DefaultLayout, rand.Reader)
	phone.SetDevicePKI(b.DevicePKI(rand.Reader))
	phone.SetPairingPassword("12345678")
	s := &sizer{card: phone}
	if o := p.Run(context.Background(), s); o.Result != pairing.Paired {
		t.Fatalf("pairing: %s %s", o.Result, o.Detail)
	}
	flows = append(flows, struct {
		name string
		flow []exchange
	}{"owner pairing", s.flow})

	var table strings.Builder
	fmt.Fprintf(&table, "%-42s %6s %6s %10s %10s %10s\n", "flow", "APDUs", "bytes", "106 kbit/s", "212 kbit/s", "424 kbit/s")
	for _, f := range flows {
		bytes := 0
		for _, e := range f.flow {
			bytes += e.cmd + e.resp
		}
		t106, t212, t424 := airTime(f.flow, 128), airTime(f.flow, 64), airTime(f.flow, 32)
		if len(f.flow) == 0 || !(t424 < t212 && t212 < t106) {
			t.Fatalf("%s: %d exchanges, %v %v %v", f.name, len(f.flow), t106, t212, t424)
		}
		ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
		fmt.Fprintf(&table, "%-42s %6d %6d %10s %10s %10s\n", f.name, len(f.flow), bytes, ms(t106), ms(t212), ms(t424))
	}
	t.Logf("ISO 14443-4 air-time floor per flow:\n%s", table.String())
}
