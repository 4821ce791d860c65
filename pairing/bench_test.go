package pairing_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/internal/pki"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/pairing"
	"github.com/dkvehicled/dkvehicled/pairing/spake2plus"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// recorder keeps a real phone's answers; replayer gives them back in order,
// so the benchmark measures the vehicle alone.
type recorder struct {
	card    *endpoint.Phone
	answers [][]byte
}

func (r *recorder) Transceive(ctx context.Context, c []byte) ([]byte, error) {
	a, err := r.card.Transceive(ctx, c)
	r.answers = append(r.answers, a)
	return a, err
}

type replayer struct {
	answers [][]byte
	i       int
}

func (r *replayer) Transceive(context.Context, []byte) ([]byte, error) {
	a := r.answers[r.i]
	r.i++
	return a, nil
}

// BenchmarkPairingVehicle is the vehicle's share of an owner pairing:
// framework SELECT, counting the attempt in the store, SPAKE2+ (the
// vehicle's side: no scrypt, which runs on the phone and at the OEM),
// WRITE DATA, GET DATA, the certificate chain and creation signature checks,
// storing the owner. The phone's answers are recorded once and replayed with
// the same vehicle randomness and clock, the store reset before each run.
func BenchmarkPairingVehicle(b *testing.B) {
	for _, v := range []struct {
		name   string
		noSync bool
	}{{"nosync", true}, {"fsync", false}} {
		b.Run(v.name, func(b *testing.B) { benchPairing(b, v.noSync) })
	}
}

func benchPairing(b *testing.B, noSync bool) {
	const password = "12345678"
	now := time.Now()
	vk, err := keys.NewSigningKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(b.TempDir(), "pki")
	if err := pki.Init(dir, rand.Reader, &vk.PublicKey, now); err != nil {
		b.Fatal(err)
	}
	bench, err := pki.LoadBench(dir)
	if err != nil {
		b.Fatal(err)
	}
	ver, err := pki.NewVerifier(rand.Reader, password, pki.MinScryptN)
	if err != nil {
		b.Fatal(err)
	}
	st, err := keystore.Open(filepath.Join(b.TempDir(), "s.db"), keystore.Options{NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	var base *keystore.Snapshot
	if err := st.Update(func(tx *keystore.Tx) (err error) {
		if err := tx.PutVerifier(ver.Keystore(pairing.MaxAttempts)); err != nil {
			return err
		}
		base, err = tx.Snapshot()
		return err
	}); err != nil {
		b.Fatal(err)
	}
	random := make([]byte, 1024)
	if _, err := io.ReadFull(rand.Reader, random); err != nil {
		b.Fatal(err)
	}
	rd := bytes.NewReader(random)
	p, err := pairing.New(pairing.Config{
		Vehicle: pairing.Vehicle{Identifier: []byte("VEHICLE1"), Versions: wire.CCC.Versions, Layout: wire.DefaultLayout,
			Brand: []byte{0, 1}, Certificate: bench.Vehicle.Raw, Root: bench.Root.Cert, OwnerName: "owner"},
		Store: st, Rand: rd, Now: func() time.Time { return now },
	})
	if err != nil {
		b.Fatal(err)
	}
	phone := endpoint.New(wire.CCC, wire.CCC.Versions, wire.DefaultLayout, rand.Reader)
	phone.SetDevicePKI(bench.DevicePKI(rand.Reader))
	phone.SetPairingPassword(password)
	rec := &recorder{card: phone}
	if o := p.Run(context.Background(), rec); o.Result != pairing.Paired {
		b.Fatalf("recorded pairing: %s %s", o.Result, o.Detail)
	}
	var spent time.Duration
	for b.Loop() {
		if err := st.Update(func(tx *keystore.Tx) error { return tx.Restore(base) }); err != nil {
			b.Fatal(err)
		}
		rd.Reset(random)
		start := time.Now()
		o := p.Run(context.Background(), &replayer{answers: rec.answers})
		spent += time.Since(start)
		if o.Result != pairing.Paired {
			b.Fatalf("replayed pairing: %s %s", o.Result, o.Detail)
		}
	}
	b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N), "pairing-ns/op")
}

// BenchmarkScrypt4096 is the password derivation at N = 4096, r = 8, p = 1:
// what the phone pays at SPAKE2+ REQUEST (and the OEM, or a bench vehicle
// given a password, once per verifier).
func BenchmarkScrypt4096(b *testing.B) {
	salt := make([]byte, 16)
	for b.Loop() {
		if _, _, _, err := spake2plus.Password([]byte("12345678"), salt, 4096, 8, 1); err != nil {
			b.Fatal(err)
		}
	}
}
