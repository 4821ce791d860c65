package pki_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/internal/pki"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/pairing"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

const password = "12345678"

// bench makes a bench PKI in a new directory and loads it back.
func bench(t *testing.T) (string, *pki.Bench) {
	t.Helper()
	vk, err := keys.NewSigningKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "pki")
	if err := pki.Init(dir, rand.Reader, &vk.PublicKey, time.Now()); err != nil {
		t.Fatal(err)
	}
	b, err := pki.LoadBench(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, b
}

// vehicle is a pairing vehicle with the bench's certificates and a store
// holding v.
func vehicle(t *testing.T, b *pki.Bench, v *pki.Verifier) (*pairing.Pairer, *keystore.Store) {
	t.Helper()
	st, err := keystore.Open(filepath.Join(t.TempDir(), "s.db"), keystore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Update(func(tx *keystore.Tx) error { return tx.PutVerifier(v.Keystore(pairing.MaxAttempts)) }); err != nil {
		t.Fatal(err)
	}
	p, err := pairing.New(pairing.Config{
		Vehicle: pairing.Vehicle{Identifier: []byte("VEHICLE1"), Versions: wire.CCC.Versions, Layout: wire.DefaultLayout,
			Brand: []byte{0, 1}, Certificate: b.Vehicle.Raw, Root: b.Root.Cert, OwnerName: "owner"},
		Store: st, Rand: rand.Reader, Now: time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, st
}

func phone(d *endpoint.DevicePKI, password string) *endpoint.Phone {
	p := endpoint.New(wire.CCC, wire.CCC.Versions, wire.DefaultLayout, rand.Reader)
	p.SetDevicePKI(d)
	p.SetPairingPassword(password)
	return p
}

func attemptsLeft(t *testing.T, st *keystore.Store) int {
	t.Helper()
	var v *keystore.Verifier
	if err := st.View(func(tx *keystore.Tx) (err error) { v, err = tx.Verifier(); return err }); err != nil {
		t.Fatal(err)
	}
	if v == nil {
		return -1
	}
	return v.AttemptsLeft
}

// The bench PKI and a verifier file pair a phone with a real vehicle: the
// vehicle accepts the chain (root → device OEM CA → instance CA → endpoint)
// and the phone accepts the vehicle certificate against the root.
func TestPairing(t *testing.T) {
	dir, b := bench(t)
	v, err := pki.NewVerifier(rand.Reader, password, pki.MinScryptN)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "verifier.json")
	if err := pki.WriteVerifier(path, v); err != nil {
		t.Fatal(err)
	}
	if v, err = pki.ReadVerifier(path); err != nil {
		t.Fatal(err)
	}
	pkiOf := map[string]func() *endpoint.DevicePKI{
		"bench issuer": func() *endpoint.DevicePKI { return b.DevicePKI(rand.Reader) },
		"phone issues": func() *endpoint.DevicePKI { d := b.DevicePKI(rand.Reader); d.Issue = nil; return d },
	}
	for name, d := range pkiOf {
		t.Run(name, func(t *testing.T) {
			pr, st := vehicle(t, b, v)
			ph := phone(d(), password)
			o := pr.Run(context.Background(), ph)
			if o.Result != pairing.Paired {
				t.Fatalf("%s %s: %s", o.Result, o.Reason, o.Detail)
			}
			k := ph.Key([]byte("VEHICLE1"))
			if k == nil || k.Role != endpoint.RoleOwner || k.KeyID() != *o.KeyID {
				t.Fatalf("phone's key %+v, vehicle's owner %v", k, o.KeyID)
			}
			if !bytes.Equal(k.AuthorizedPK, keys.EncodePoint(b.Root.Cert.PublicKey.(*ecdsa.PublicKey))) {
				t.Error("authorized_PK is not the vehicle OEM root's key")
			}
			if n := attemptsLeft(t, st); n != -1 {
				t.Errorf("verifier still stored (%d attempts)", n)
			}
		})
	}
}

func TestPairingRefused(t *testing.T) {
	_, b := bench(t)
	_, other := bench(t)
	v, err := pki.NewVerifier(rand.Reader, password, pki.MinScryptN)
	if err != nil {
		t.Fatal(err)
	}
	// issuedAt is the bench's device PKI with endpoint certificates issued
	// as if at another time.
	issuedAt := func(at time.Time) *endpoint.DevicePKI {
		d := b.DevicePKI(rand.Reader)
		d.Issue = func(pub *ecdsa.PublicKey) ([]byte, error) {
			return b.InstanceCA.IssueLeaf(rand.Reader, pub, "endpoint", at)
		}
		return d
	}
	// identityX answers SPAKE2+ REQUEST (command 1) with X = 04 ‖ 0^64.
	identityX := func(i int, r []byte) []byte {
		if i != 1 || len(r) < 67 {
			return r
		}
		r = append([]byte(nil), r...)
		clear(r[3:67])
		return r
	}
	for _, c := range []struct {
		name     string
		d        *endpoint.DevicePKI
		password string
		corrupt  func(int, []byte) []byte
		result   pairing.Result
		reason   wire.Reason
		cf       string // the OP CONTROL FLOW sent, hex
		detail   string // what the vehicle's detail must say
	}{
		{"wrong password", b.DevicePKI(rand.Reader), "87654321", nil, pairing.Failed, wire.ReasonConfirmation, "803c000f", "wrong password"},
		// Another vehicle OEM cross-signed that device OEM CA.
		{"foreign chain", other.DevicePKI(rand.Reader), password, nil, pairing.Failed, wire.ReasonChainRejected, "803c0010", "device OEM CA"},
		{"expired endpoint certificate", issuedAt(time.Now().AddDate(-11, 0, 0)), password, nil, pairing.Failed, wire.ReasonChainRejected, "803c0010", "endpoint certificate not valid"},
		{"endpoint certificate not yet valid", issuedAt(time.Now().Add(2 * time.Hour)), password, nil, pairing.Failed, wire.ReasonChainRejected, "803c0010", "endpoint certificate not valid"},
		{"identity X", b.DevicePKI(rand.Reader), password, identityX, pairing.Failed, wire.ReasonBadPoint, "803c000c", "share"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pr, st := vehicle(t, b, v)
			ph := phone(c.d, c.password)
			card := &endpoint.Faulty{Card: ph, DropAt: -1, Corrupt: c.corrupt}
			o := pr.Run(context.Background(), card)
			if o.Result != c.result || o.Reason != c.reason {
				t.Fatalf("%s %s (%s), want %s %s", o.Result, o.Reason, o.Detail, c.result, c.reason)
			}
			if got := fmt.Sprintf("%x", o.ControlFlow); got != c.cf {
				t.Errorf("OP CONTROL FLOW %s, want %s", got, c.cf)
			}
			if !strings.Contains(o.Detail, c.detail) {
				t.Errorf("detail %q does not say %q", o.Detail, c.detail)
			}
			if n := attemptsLeft(t, st); n != pairing.MaxAttempts-1 {
				t.Errorf("%d attempts left", n)
			}
			if len(ph.Keys()) != 0 {
				t.Error("the phone installed a key")
			}
		})
	}
}

// A phone pulled away after SPAKE2+ VERIFY (at WRITE DATA): the attempt is
// spent, no owner is stored, and the OP CONTROL FLOW never reaches it.
func TestPairingPulledAfterVerify(t *testing.T) {
	_, b := bench(t)
	v, err := pki.NewVerifier(rand.Reader, password, pki.MinScryptN)
	if err != nil {
		t.Fatal(err)
	}
	pr, st := vehicle(t, b, v)
	ph := phone(b.DevicePKI(rand.Reader), password)
	card := &endpoint.Faulty{Card: ph, DropAt: 3} // 0 SELECT, 1 REQUEST, 2 VERIFY, 3 WRITE DATA
	o := pr.Run(context.Background(), card)
	if o.Result != pairing.Error || o.KeyID != nil {
		t.Fatalf("%s %s (%s)", o.Result, o.Reason, o.Detail)
	}
	if n := attemptsLeft(t, st); n != pairing.MaxAttempts-1 {
		t.Errorf("%d attempts left", n)
	}
	var owner bool
	if err := st.View(func(tx *keystore.Tx) error { _, owner = tx.Owner(); return nil }); err != nil || owner {
		t.Fatalf("owner stored: %v %v", owner, err)
	}
	if len(ph.Keys()) != 0 {
		t.Error("the phone installed a key")
	}
}

func TestCertificates(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	root, err := pki.NewRoot(rand.Reader, "root", now)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := root.IssueCA(rand.Reader, "ca", now)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := keys.NewSigningKey(rand.Reader)
	der, err := ca.IssueLeaf(rand.Reader, &k.PublicKey, "leaf", now)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		c      *x509.Certificate
		parent *x509.Certificate
		ca     bool
		usage  x509.KeyUsage
	}{
		{root.Cert, root.Cert, true, x509.KeyUsageCertSign | x509.KeyUsageCRLSign},
		{ca.Cert, root.Cert, true, x509.KeyUsageCertSign | x509.KeyUsageCRLSign},
		{leaf, ca.Cert, false, x509.KeyUsageDigitalSignature},
	} {
		name := c.c.Subject.CommonName
		if c.c.SignatureAlgorithm != x509.ECDSAWithSHA256 || !bytes.Equal(c.c.RawIssuer, c.parent.RawSubject) {
			t.Errorf("%s: %v, issuer %s", name, c.c.SignatureAlgorithm, c.c.Issuer)
		}
		if err := c.c.CheckSignatureFrom(c.parent); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if !c.c.BasicConstraintsValid || c.c.IsCA != c.ca || c.c.KeyUsage != c.usage {
			t.Errorf("%s: CA %v, key usage %b", name, c.c.IsCA, c.c.KeyUsage)
		}
		if !c.c.NotBefore.Equal(now.Add(-time.Hour)) || c.c.SerialNumber.Sign() <= 0 || c.c.SerialNumber.BitLen() > 128 {
			t.Errorf("%s: not before %v, serial %v", name, c.c.NotBefore, c.c.SerialNumber)
		}
	}
	if !root.Cert.NotAfter.After(ca.Cert.NotAfter) || !leaf.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("validity: root %v, CA %v, leaf %v", root.Cert.NotAfter, ca.Cert.NotAfter, leaf.NotAfter)
	}
	// Issued near the end of the root's life, a CA ends with the root.
	late, err := root.IssueCA(rand.Reader, "late", root.Cert.NotAfter.Add(-24*time.Hour))
	if err != nil || !late.Cert.NotAfter.Equal(root.Cert.NotAfter) {
		t.Errorf("late CA: %v %v", err, late.Cert.NotAfter)
	}
	if _, err := ca.IssueLeaf(rand.Reader, nil, "nil", now); err == nil {
		t.Error("a leaf for no key")
	}
}

func TestInit(t *testing.T) {
	dir, _ := bench(t)
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v %v", st.Mode(), err)
	}
	for name, mode := range map[string]os.FileMode{
		pki.RootCertFile: 0o644, pki.RootKeyFile: 0o600, pki.VehicleCertFile: 0o644, pki.DeviceCACertFile: 0o644,
		pki.DeviceCAKeyFile: 0o600, pki.InstanceCACertFile: 0o644, pki.InstanceCAKeyFile: 0o600,
	} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want %v", name, st.Mode(), err, mode)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 7 {
		t.Errorf("%d files", len(entries))
	}
	vk, _ := keys.NewSigningKey(rand.Reader)
	before, _ := os.ReadFile(filepath.Join(dir, pki.RootKeyFile))
	if err := pki.Init(dir, rand.Reader, &vk.PublicKey, time.Now()); err == nil {
		t.Fatal("Init overwrote a PKI")
	}
	if after, _ := os.ReadFile(filepath.Join(dir, pki.RootKeyFile)); !bytes.Equal(before, after) {
		t.Fatal("the root key changed")
	}
	// One file in the way: nothing is written.
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, pki.InstanceCAKeyFile), []byte("x"), 0o600)
	if err := pki.Init(dir2, rand.Reader, &vk.PublicKey, time.Now()); err == nil || !strings.Contains(err.Error(), pki.InstanceCAKeyFile) {
		t.Fatalf("Init over a file: %v", err)
	}
	if entries, _ := os.ReadDir(dir2); len(entries) != 1 {
		t.Errorf("%d files after a refused Init", len(entries))
	}
	if err := pki.Init(t.TempDir(), rand.Reader, nil, time.Now()); err == nil {
		t.Error("Init without a vehicle key")
	}
}

func TestLoadBenchErrors(t *testing.T) {
	otherDir := t.TempDir()
	vk, _ := keys.NewSigningKey(rand.Reader)
	if err := pki.Init(otherDir, rand.Reader, &vk.PublicKey, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		file string
		data func(dir string) []byte // nil: remove the file
	}{
		{"missing", pki.DeviceCAKeyFile, nil},
		{"not PEM", pki.RootCertFile, func(string) []byte { return []byte("garbage") }},
		{"key for a certificate", pki.VehicleCertFile, func(dir string) []byte {
			b, _ := os.ReadFile(filepath.Join(dir, pki.RootKeyFile))
			return b
		}},
		{"corrupt certificate", pki.InstanceCACertFile, func(string) []byte {
			return []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
		}},
		{"another key", pki.InstanceCAKeyFile, func(string) []byte {
			b, _ := os.ReadFile(filepath.Join(otherDir, pki.InstanceCAKeyFile))
			return b
		}},
		{"another issuer", pki.VehicleCertFile, func(string) []byte {
			b, _ := os.ReadFile(filepath.Join(otherDir, pki.VehicleCertFile))
			return b
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, _ := bench(t)
			path := filepath.Join(dir, c.file)
			if c.data == nil {
				os.Remove(path)
			} else if err := os.WriteFile(path, c.data(dir), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := pki.LoadBench(dir)
			if err == nil || !strings.Contains(err.Error(), c.file) {
				t.Fatalf("error %v does not name %s", err, c.file)
			}
			if strings.Contains(err.Error(), "PRIVATE") {
				t.Errorf("error quotes a key: %v", err)
			}
		})
	}
}
