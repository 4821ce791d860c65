package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"github.com/dkvehicled/dkvehicled/config"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadVehicleKey feeds arbitrary bytes as the vehicle key file that
// `dkpki init -vehicle-key` reads: only a P-256 private key in a PEM block
// is accepted, and no error shows the key material.
func FuzzReadVehicleKey(f *testing.F) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k)
	sec1, _ := x509.MarshalECPrivateKey(k)
	k384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384, _ := x509.MarshalPKCS8PrivateKey(k384)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: pkcs8}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: pkcs8}))
	f.Add(pkcs8)
	d := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(d, "vehicle.key")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		key, err := config.ReadVehicleKey(path)
		if err == nil {
			if key == nil || key.Curve != elliptic.P256() {
				t.Fatalf("accepted a key that is not P-256: %v", key)
			}
			return
		}
		der := b
		if blk, _ := pem.Decode(b); blk != nil {
			der = blk.Bytes
		}
		if len(der) < 8 {
			return
		}
		for _, s := range []string{hex.EncodeToString(der[:8]), hex.EncodeToString(der[len(der)-8:])} {
			if strings.Contains(err.Error(), s) && !strings.Contains(path, s) {
				t.Fatalf("error shows the key file: %v", err)
			}
		}
	})
}
