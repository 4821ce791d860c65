package pairing

import (
	"crypto/ecdsa"
	"crypto/x509"
	"errors"

	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

// ecdsaPoint returns a certificate's P-256 key as a 65-byte point.
func ecdsaPoint(c *x509.Certificate) ([]byte, error) {
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("pairing: the vehicle OEM root has no ECDSA key")
	}
	b := keys.EncodePoint(pub)
	if _, err := keys.ParseVerifyingKey(b); err != nil {
		return nil, errors.New("pairing: the vehicle OEM root key is not P-256")
	}
	return b, nil
}
