package pairing

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/dkvehicled/dkvehicled/pairing/message"
)

var oidKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 15}

func hasKeyUsage(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oidKeyUsage) {
			return true
		}
	}
	return false
}

// checkChain verifies the phone's certificate chain as PROTOCOL.md 6.3 says:
// vehicle OEM root → device OEM CA (cross-signed by the vehicle OEM) →
// instance CA → endpoint certificate; ECDSA P-256 throughout, names chaining
// from the root's subject, both CAs with cA=TRUE and the endpoint not a CA,
// every certificate valid at now, and where a KeyUsage extension is present
// below the root: keyCertSign on the CAs, digitalSignature on the endpoint.
// It returns the endpoint's public key.
func checkChain(root *x509.Certificate, created *message.Created, now time.Time) (*ecdsa.PublicKey, error) {
	parse := func(name string, der []byte) (*x509.Certificate, error) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%s certificate: %v", name, err)
		}
		return c, nil
	}
	device, err := parse("device OEM CA", created.DeviceCA)
	if err != nil {
		return nil, err
	}
	instance, err := parse("instance CA", created.InstanceCA)
	if err != nil {
		return nil, err
	}
	endpoint, err := parse("endpoint", created.EndpointCert)
	if err != nil {
		return nil, err
	}
	chain := []struct {
		name   string
		c      *x509.Certificate
		parent *x509.Certificate
		ca     bool
	}{
		{"vehicle OEM root", root, nil, true},
		{"device OEM CA", device, root, true},
		{"instance CA", instance, device, true},
		{"endpoint", endpoint, instance, false},
	}
	for _, l := range chain {
		c := l.c
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			return nil, fmt.Errorf("%s certificate not valid at %s", l.name, now.Format(time.RFC3339))
		}
		pub, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%s certificate: not a P-256 key", l.name)
		}
		if l.parent == nil {
			continue
		}
		if c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
			return nil, fmt.Errorf("%s certificate: signature algorithm %v", l.name, c.SignatureAlgorithm)
		}
		if !bytes.Equal(c.RawIssuer, l.parent.RawSubject) {
			return nil, fmt.Errorf("%s certificate: issuer is not the %s's subject", l.name, chainName(l.parent, root, device))
		}
		if err := l.parent.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
			return nil, fmt.Errorf("%s certificate: signature: %v", l.name, err)
		}
		switch {
		case l.ca && !(c.BasicConstraintsValid && c.IsCA):
			return nil, fmt.Errorf("%s certificate is not a CA", l.name)
		case !l.ca && c.IsCA:
			return nil, fmt.Errorf("%s certificate is a CA", l.name)
		case l.ca && hasKeyUsage(c) && c.KeyUsage&x509.KeyUsageCertSign == 0:
			return nil, fmt.Errorf("%s certificate: KeyUsage without keyCertSign", l.name)
		case !l.ca && hasKeyUsage(c) && c.KeyUsage&x509.KeyUsageDigitalSignature == 0:
			return nil, fmt.Errorf("%s certificate: KeyUsage without digitalSignature", l.name)
		}
	}
	pub, _ := endpoint.PublicKey.(*ecdsa.PublicKey)
	if pub == nil {
		return nil, errors.New("endpoint certificate without a key")
	}
	return pub, nil
}

func chainName(c, root, device *x509.Certificate) string {
	switch c {
	case root:
		return "vehicle OEM root"
	case device:
		return "device OEM CA"
	}
	return "instance CA"
}
