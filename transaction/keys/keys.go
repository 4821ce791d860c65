// Package keys is the key schedule of the Digital Key applet protocol
// (PROTOCOL.md 1, 3.3 and 3.4): P-256 points and key identifiers, ephemeral
// keys drawn from an injected source of randomness, ECDSA with raw r‖s
// signatures, ECDH with the one-block X9.63 KDF, the HKDF info strings of both
// profiles, and the derivation of the session keys, Kpersistent and the fast
// cryptogram.
package keys

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/dkvehicled/dkvehicled/internal/secret"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// ErrBadPoint reports a public key that is not a valid uncompressed P-256 point
// (wrong length or format, off the curve, or the identity).
var ErrBadPoint = errors.New("invalid P-256 point")

// KeyID is the Digital Key Identifier: SHA-1 of the 65-byte public key.
type KeyID [wire.KeyIDLen]byte

// String is the lower-case hex form (key identifiers may be logged).
func (k KeyID) String() string { return fmt.Sprintf("%x", k[:]) }

// KeyIDOf returns the identifier of a 65-byte public key.
func KeyIDOf(pub []byte) KeyID { return sha1.Sum(pub) }

// ParseKeyID decodes a 40-digit hex identifier.
func ParseKeyID(s string) (KeyID, error) {
	var k KeyID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(k) {
		return k, fmt.Errorf("key identifier %q: want %d hex digits", s, 2*len(k))
	}
	return KeyID(b), nil
}

// ParsePoint validates a 65-byte uncompressed point for ECDH.
func ParsePoint(b []byte) (*ecdh.PublicKey, error) {
	if len(b) != wire.PointLen || b[0] != 0x04 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadPoint, len(b))
	}
	p, err := ecdh.P256().NewPublicKey(b)
	if err != nil {
		return nil, ErrBadPoint
	}
	return p, nil
}

// ParseVerifyingKey validates a 65-byte uncompressed point as an ECDSA key.
func ParseVerifyingKey(b []byte) (*ecdsa.PublicKey, error) {
	if len(b) != wire.PointLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadPoint, len(b))
	}
	p, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b)
	if err != nil {
		return nil, ErrBadPoint
	}
	return p, nil
}

// EncodePoint returns the 65-byte form of an ECDSA public key.
func EncodePoint(pub *ecdsa.PublicKey) []byte {
	b, err := pub.Bytes()
	if err != nil {
		panic(err) // only for keys not on a supported curve
	}
	return b
}

// X returns the 32-byte X coordinate of a 65-byte point.
func X(point []byte) []byte { return point[1:33] }

// NewEphemeral draws a P-256 private scalar from r: 32 bytes at a time until
// one lies in [1, n-1]. It reads r itself (Go's key generation ignores a
// caller's reader), so injected randomness reproduces the vectors.
func NewEphemeral(r io.Reader) (*ecdh.PrivateKey, error) {
	var b [wire.ScalarLen]byte
	for range 64 {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("drawing an ephemeral key: %w", err)
		}
		if k, err := ecdh.P256().NewPrivateKey(b[:]); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("drawing an ephemeral key: no valid scalar in 64 draws")
}

// NewSigningKey draws a long-term P-256 signing key from r the same way.
func NewSigningKey(r io.Reader) (*ecdsa.PrivateKey, error) {
	var b [wire.ScalarLen]byte
	for range 64 {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("drawing a key: %w", err)
		}
		if k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), b[:]); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("drawing a key: no valid scalar in 64 draws")
}

// SigningKey builds an ECDSA key from its 32-byte private scalar.
func SigningKey(scalar []byte) (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar)
	if err != nil {
		return nil, errors.New("invalid P-256 private scalar")
	}
	return k, nil
}

// Scalar returns the 32-byte private scalar of k.
func Scalar(k *ecdsa.PrivateKey) secret.Bytes {
	b, err := k.Bytes()
	if err != nil {
		panic(err)
	}
	return b
}

// Sign signs SHA-256(msg) with RFC 6979 nonces and returns raw r‖s.
func Sign(k *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	d := sha256.Sum256(msg)
	der, err := k.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return rawFromDER(der)
}

// Verify checks a raw r‖s signature over SHA-256(msg).
func Verify(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	if len(sig) != wire.SignatureLen {
		return false
	}
	d := sha256.Sum256(msg)
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(pub, d[:], r, s)
}

// rawFromDER converts an ASN.1 ECDSA signature to fixed-size r‖s.
func rawFromDER(der []byte) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil, err
	}
	out := make([]byte, wire.SignatureLen)
	sig.R.FillBytes(out[:32])
	sig.S.FillBytes(out[32:])
	return out, nil
}

// ECDH returns Z, the X coordinate of priv·peer.
func ECDH(priv *ecdh.PrivateKey, peer *ecdh.PublicKey) (secret.Bytes, error) {
	z, err := priv.ECDH(peer)
	if err != nil {
		return nil, err
	}
	return z, nil
}

// X963 is one block of the ANSI X9.63 KDF: SHA-256(Z ‖ 00000001 ‖ txid).
func X963(z secret.Bytes, txid []byte) secret.Bytes {
	h := sha256.New()
	h.Write(z)
	h.Write([]byte{0, 0, 0, 1})
	h.Write(txid)
	return h.Sum(nil)
}
