package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dkvehicled/dkvehicled/internal/pki"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

func cli(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("dkpki %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
	}
	return out.String()
}

func fails(t *testing.T, args ...string) string {
	t.Helper()
	var errOut bytes.Buffer
	if code := run(args, &bytes.Buffer{}, &errOut); code != 1 {
		t.Fatalf("dkpki %s: exit %d, want 1", strings.Join(args, " "), code)
	}
	return errOut.String()
}

// writeKey writes a vehicle key as dkvehicled does (PKCS#8 PEM) or in SEC 1.
func writeKey(t *testing.T, path string, sec1 bool) []byte {
	k, err := keys.NewSigningKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk := &pem.Block{Type: "PRIVATE KEY"}
	if sec1 {
		blk.Type = "EC PRIVATE KEY"
		blk.Bytes, err = x509.MarshalECPrivateKey(k)
	} else {
		blk.Bytes, err = x509.MarshalPKCS8PrivateKey(k)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	return keys.EncodePoint(&k.PublicKey)
}

func TestInitShow(t *testing.T) {
	tmp := t.TempDir()
	keyFile := filepath.Join(tmp, "vehicle.key")
	vpk := writeKey(t, keyFile, false)
	dir := filepath.Join(tmp, "pki")
	out := cli(t, "init", "-dir", dir, "-vehicle-key", keyFile)
	for _, want := range []string{
		"certificate = " + strconv.Quote(filepath.Join(dir, "vehicle.crt")),
		"oem_root = " + strconv.Quote(filepath.Join(dir, "vehicle-oem-root.crt")),
		pki.DeviceCAKeyFile, pki.InstanceCACertFile, "under [vehicle]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("init output lacks %q:\n%s", want, out)
		}
	}
	b, err := pki.LoadBench(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(keys.EncodePoint(b.Vehicle.PublicKey.(*ecdsa.PublicKey)), vpk) {
		t.Fatal("the vehicle certificate is not for the vehicle key")
	}
	if e := fails(t, "init", "-dir", dir, "-vehicle-key", keyFile); !strings.Contains(e, "exists") {
		t.Errorf("second init: %s", e)
	}

	out = cli(t, "show", "-dir", dir)
	h := sha256.Sum256(b.Vehicle.Raw)
	for _, want := range []string{pki.RootCertFile, pki.VehicleCertFile, pki.DeviceCACertFile, pki.InstanceCACertFile,
		hex.EncodeToString(h[:]), "CN=dkvehicled bench device OEM CA"} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "PRIVATE") || strings.Contains(out, hex.EncodeToString(keys.Scalar(b.Root.Key).Expose())) {
		t.Fatalf("show prints a private key:\n%s", out)
	}
	if e := fails(t, "show", "-dir", tmp); !strings.Contains(e, pki.RootCertFile) {
		t.Errorf("show of no PKI: %s", e)
	}

	// A SEC 1 key works too; a missing or wrong key file is an error.
	sec1 := filepath.Join(tmp, "sec1.key")
	writeKey(t, sec1, true)
	cli(t, "init", "-dir", filepath.Join(tmp, "pki2"), "-vehicle-key", sec1)
	fails(t, "init", "-dir", filepath.Join(tmp, "pki3"), "-vehicle-key", filepath.Join(tmp, "none"))
	fails(t, "init", "-dir", filepath.Join(tmp, "pki3"), "-vehicle-key", filepath.Join(dir, pki.RootCertFile))
}

func TestVerifier(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "v.json")
	out := cli(t, "verifier", "-password", "12345678", "-out", path)
	if !strings.Contains(out, path) || strings.Contains(out, "12345678") {
		t.Errorf("verifier output: %s", out)
	}
	v, err := pki.ReadVerifier(path)
	if err != nil || v.N != pki.MinScryptN {
		t.Fatalf("%v %+v", err, v)
	}
	if e := fails(t, "verifier", "-password", "12345678", "-out", path); !strings.Contains(e, "exists") {
		t.Errorf("overwrite: %s", e)
	}

	stdin = strings.NewReader("87654321\n")
	t.Cleanup(func() { stdin = os.Stdin })
	path2 := filepath.Join(dir, "v2.json")
	cli(t, "verifier", "-password", "-", "-n", "8192", "-out", path2)
	v2, err := pki.ReadVerifier(path2)
	if err != nil || v2.N != 8192 {
		t.Fatalf("%v %+v", err, v2)
	}

	for _, c := range [][]string{
		{"-password", "1234", "-out", filepath.Join(dir, "x")},
		{"-password", "12345678", "-n", "1000", "-out", filepath.Join(dir, "x")},
	} {
		if e := fails(t, append([]string{"verifier"}, c...)...); strings.Contains(e, c[1]) {
			t.Errorf("error quotes the password: %s", e)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("a refused verifier was written")
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"fly"}, {"init"}, {"init", "-dir", "x"}, {"show"}, {"verifier", "-out", "x"},
		{"verifier", "-password", "12345678"}, {"show", "-dir", "x", "extra"}, {"init", "-bogus"}} {
		if code := run(args, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
