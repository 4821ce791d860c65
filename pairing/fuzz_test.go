package pairing

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/internal/pki"
	"github.com/dkvehicled/dkvehicled/pairing/message"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

// chainNow is the time of the fuzzed chain checks: the test chain is valid
// from an hour before it for ten years.
var chainNow = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// testChain is a vehicle OEM root and a phone's chain below it, made with
// keys and serial numbers drawn from a fixed seed, so that the chains
// committed under testdata/fuzz keep verifying against the root made here
// (only the signatures' nonces differ from run to run).
type testChain struct {
	root                       *x509.Certificate
	device, instance, endpoint []byte // DER
}

func newTestChain(tb testing.TB) *testChain {
	r := rand.NewChaCha8([32]byte{'c', 'h', 'a', 'i', 'n'})
	root, err := pki.NewRoot(r, "vehicle OEM root", chainNow)
	if err != nil {
		tb.Fatal(err)
	}
	device, err := root.IssueCA(r, "device OEM CA", chainNow)
	if err != nil {
		tb.Fatal(err)
	}
	instance, err := device.IssueCA(r, "instance CA", chainNow)
	if err != nil {
		tb.Fatal(err)
	}
	leafKey, err := keys.NewSigningKey(r)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := instance.IssueLeaf(r, &leafKey.PublicKey, "endpoint", chainNow)
	if err != nil {
		tb.Fatal(err)
	}
	return &testChain{root: root.Cert, device: device.Cert.Raw, instance: instance.Cert.Raw, endpoint: leaf}
}

func tbsOf(der []byte) []byte {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil
	}
	return c.RawTBSCertificate
}

// FuzzCheckChain checks the phone's certificate chain of GET DATA against
// the vehicle OEM root. A chain it accepts passes the standard library's
// own signature and CA checks link by link, is valid at the time, has a
// non-CA endpoint, and is the genuine chain (the same signed contents: no
// certificate the fuzzer could change without the CAs' keys gets
// through); the genuine chain is accepted exactly while every certificate
// is valid; and the chain survives the GET DATA encoding unchanged.
func FuzzCheckChain(f *testing.F) {
	tc := newTestChain(f)
	f.Add(tc.endpoint, tc.instance, tc.device, int32(0))
	f.Add(tc.endpoint, tc.instance, tc.device, int32(-2))
	f.Add(tc.endpoint, tc.instance, tc.device, int32(10*365*24+10))
	f.Add(tc.instance, tc.instance, tc.device, int32(0))
	f.Add(tc.endpoint, tc.device, tc.instance, int32(0))
	f.Add(tc.endpoint, tc.instance, tc.root.Raw, int32(0))
	f.Add(tc.endpoint[:len(tc.endpoint)-1], tc.instance, tc.device, int32(0))
	genuine := [3][]byte{tbsOf(tc.endpoint), tbsOf(tc.instance), tbsOf(tc.device)}
	f.Fuzz(func(t *testing.T, endpoint, instance, device []byte, hours int32) {
		now := chainNow.Add(time.Duration(hours) * time.Hour)
		created := &message.Created{EndpointCert: endpoint, InstanceCA: instance, DeviceCA: device, Signature: make([]byte, 64)}
		if len(endpoint) > 0 && len(instance) > 0 && len(device) > 0 && len(endpoint)+len(instance)+len(device) < 0xFF00 {
			back, err := message.ParseCreated(created.Encode())
			if err != nil || !bytes.Equal(back.EndpointCert, endpoint) || !bytes.Equal(back.InstanceCA, instance) || !bytes.Equal(back.DeviceCA, device) {
				t.Fatalf("GET DATA does not carry the chain unchanged: %v", err)
			}
		}
		pub, err := checkChain(tc.root, created, now)

		isGenuine := bytes.Equal(endpoint, tc.endpoint) && bytes.Equal(instance, tc.instance) && bytes.Equal(device, tc.device)
		if isGenuine {
			valid := true
			for _, der := range [][]byte{tc.endpoint, tc.instance, tc.device, tc.root.Raw} {
				c, _ := x509.ParseCertificate(der)
				valid = valid && !now.Before(c.NotBefore) && !now.After(c.NotAfter)
			}
			if (err == nil) != valid {
				t.Fatalf("genuine chain at %s: %v", now, err)
			}
		}
		if err != nil {
			if pub != nil {
				t.Fatal("a key and an error")
			}
			return
		}

		var certs [3]*x509.Certificate
		for i, der := range [][]byte{endpoint, instance, device} {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatalf("accepted certificate %d does not parse: %v", i, err)
			}
			if now.Before(c.NotBefore) || now.After(c.NotAfter) {
				t.Fatalf("accepted certificate %d is not valid at %s", i, now)
			}
			if !bytes.Equal(c.RawTBSCertificate, genuine[i]) {
				t.Fatalf("accepted certificate %d is not the genuine one", i)
			}
			certs[i] = c
		}
		ep, inst, dev := certs[0], certs[1], certs[2]
		for i, link := range [][2]*x509.Certificate{{dev, tc.root}, {inst, dev}, {ep, inst}} {
			if err := link[0].CheckSignatureFrom(link[1]); err != nil {
				t.Fatalf("link %d: %v", i, err)
			}
		}
		if ep.IsCA || !dev.IsCA || !inst.IsCA {
			t.Fatal("CA flags")
		}
		if want, ok := ep.PublicKey.(*ecdsa.PublicKey); !ok || !want.Equal(pub) {
			t.Fatal("returned key is not the endpoint certificate's")
		}
	})
}
