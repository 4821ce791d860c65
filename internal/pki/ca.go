// Package pki is the bench PKI for owner pairing (PROTOCOL.md 6.3): the
// vehicle OEM root, the vehicle certificate, the device OEM CA cross-signed by
// the vehicle OEM, and a phone's instance CA; and the verifier file the OEM's
// backend gives the vehicle (PROTOCOL.md 6.2).
//
// All keys are P-256 and all certificates are signed with ECDSA-SHA256, as the
// vehicle's chain check requires. Randomness and time are injected, except
// in Bench.DevicePKI, whose issuer reads the clock as a phone does.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

// Certificates are valid from an hour before they are made (clocks differ),
// the root for 20 years and every other certificate for 10, never past its
// issuer.
const (
	backdate     = time.Hour
	rootValidity = 20 * 365 * 24 * time.Hour
	validity     = 10 * 365 * 24 * time.Hour
)

// CA is a certificate authority: its certificate and private key.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewRoot makes a self-signed P-256 root CA whose subject's common name is
// name.
func NewRoot(rand io.Reader, name string, now time.Time) (*CA, error) {
	key, err := keys.NewSigningKey(rand)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	tmpl, err := template(rand, name, now, now.Add(rootValidity), true)
	if err != nil {
		return nil, err
	}
	return newCA(rand, tmpl, tmpl, key, key)
}

// IssueCA makes an intermediate CA with a new P-256 key, signed by c.
func (c *CA) IssueCA(rand io.Reader, name string, now time.Time) (*CA, error) {
	key, err := keys.NewSigningKey(rand)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	tmpl, err := template(rand, name, now, c.notAfter(now), true)
	if err != nil {
		return nil, err
	}
	return newCA(rand, tmpl, c.Cert, key, c.Key)
}

// IssueLeaf makes an end-entity certificate (not a CA, KeyUsage
// digitalSignature) for the P-256 key pub, signed by c, and returns its DER.
func (c *CA) IssueLeaf(rand io.Reader, pub *ecdsa.PublicKey, name string, now time.Time) ([]byte, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, errors.New("pki: the certified key must be a P-256 key")
	}
	tmpl, err := template(rand, name, now, c.notAfter(now), false)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand, tmpl, c.Cert, pub, c.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return der, nil
}

// notAfter is the end of validity of a certificate c issues at now.
func (c *CA) notAfter(now time.Time) time.Time {
	if end := now.Add(validity); end.Before(c.Cert.NotAfter) {
		return end
	}
	return c.Cert.NotAfter
}

// template is a certificate's template with a random 128-bit serial number.
func template(rand io.Reader, name string, now, notAfter time.Time, ca bool) (*x509.Certificate, error) {
	var b [16]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return nil, fmt.Errorf("pki: drawing a serial number: %w", err)
	}
	serial := new(big.Int).SetBytes(b[:])
	if serial.Sign() == 0 {
		serial.SetInt64(1)
	}
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		SignatureAlgorithm:    x509.ECDSAWithSHA256,
		BasicConstraintsValid: true,
		IsCA:                  ca,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	if ca {
		t.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	return t, nil
}

func newCA(rand io.Reader, tmpl, parent *x509.Certificate, key, signer *ecdsa.PrivateKey) (*CA, error) {
	der, err := x509.CreateCertificate(rand, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}
