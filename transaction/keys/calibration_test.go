package keys_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"
)

// BenchmarkP256 times Go's own P-256 operations, the yardstick by which the
// vehicle's figures in BENCHMARKS.md are compared across machines and
// sessions (this VM's speed drifts): key generation, ECDH, ECDSA signing and
// verification.
func BenchmarkP256(b *testing.B) {
	digest := sha256.Sum256([]byte("calibration"))
	sk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	sig, err := ecdsa.SignASN1(rand.Reader, sk, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("keygen", func(b *testing.B) {
		for b.Loop() {
			if _, err := ecdh.P256().GenerateKey(rand.Reader); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ecdh", func(b *testing.B) {
		k, _ := ecdh.P256().GenerateKey(rand.Reader)
		for b.Loop() {
			if _, err := k.ECDH(peer.PublicKey()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sign", func(b *testing.B) {
		for b.Loop() {
			if _, err := ecdsa.SignASN1(rand.Reader, sk, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			if !ecdsa.VerifyASN1(&sk.PublicKey, digest[:], sig) {
				b.Fatal("signature does not verify")
			}
		}
	})
}
