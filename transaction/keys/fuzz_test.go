package keys

import (
	"bytes"
	"crypto/elliptic"
	"math/big"
	"strings"
	"testing"

	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// FuzzParsePoint checks the two point parsers the transaction and pairing
// use on the phone's keys: they accept the same 65-byte uncompressed P-256
// points, and what they accept encodes back to the same bytes.
func FuzzParsePoint(f *testing.F) {
	k, _ := SigningKey(bytes.Repeat([]byte{0x21}, 32))
	pt := EncodePoint(&k.PublicKey)
	f.Add(pt)
	f.Add(append([]byte{0x02}, pt[1:33]...))
	f.Add(append([]byte{0x04}, make([]byte, 64)...))
	off := bytes.Clone(pt)
	off[64] ^= 1
	f.Add(off)
	f.Add(pt[:64])
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err1 := ParsePoint(b)
		v, err2 := ParseVerifyingKey(b)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("%x: ParsePoint %v, ParseVerifyingKey %v", b, err1, err2)
		}
		if err1 != nil {
			return
		}
		if len(b) != wire.PointLen || !bytes.Equal(p.Bytes(), b) || !bytes.Equal(EncodePoint(v), b) || len(X(b)) != 32 {
			t.Fatalf("%x does not round-trip", b)
		}
		if !v.Curve.IsOnCurve(v.X, v.Y) {
			t.Fatalf("%x is not on the curve", b)
		}
	})
}

// FuzzParseKeyID checks that a key identifier parses only from 40 hex
// digits and prints back as them, in lower case.
func FuzzParseKeyID(f *testing.F) {
	f.Add("0123456789abcdef0123456789abcdef01234567")
	f.Add("0123456789ABCDEF0123456789ABCDEF01234567")
	f.Add("0123abcd")
	f.Add("0123456789abcdef0123456789abcdef0123456g")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKeyID(s)
		if err != nil {
			return
		}
		if k.String() != strings.ToLower(s) {
			t.Fatalf("%q parses to %s", s, k)
		}
	})
}

// FuzzVerify checks signature verification on arbitrary raw signatures:
// it never panics, refuses every length but 64 and any r or s out of
// [1, n-1], and accepts nothing but the genuine signature and its s, n-s
// twin (nobody without the key can sign).
func FuzzVerify(f *testing.F) {
	k, _ := SigningKey(bytes.Repeat([]byte{0x21}, 32))
	msg := []byte("vehicle identifier, keys and transaction identifier")
	sig, err := Sign(k, msg)
	if err != nil {
		f.Fatal(err)
	}
	n := elliptic.P256().Params().N
	twin := bytes.Clone(sig)
	new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:])).FillBytes(twin[32:])
	f.Add(sig)
	f.Add(twin)
	f.Add(make([]byte, 64))
	f.Add(append(n.FillBytes(make([]byte, 32)), sig[32:]...))
	f.Add(sig[:63])
	f.Fuzz(func(t *testing.T, s []byte) {
		ok := Verify(&k.PublicKey, msg, s)
		if !ok {
			return
		}
		if len(s) != wire.SignatureLen {
			t.Fatalf("a %d-byte signature verifies", len(s))
		}
		r, ss := new(big.Int).SetBytes(s[:32]), new(big.Int).SetBytes(s[32:])
		if r.Sign() == 0 || ss.Sign() == 0 || r.Cmp(n) >= 0 || ss.Cmp(n) >= 0 {
			t.Fatalf("signature %x out of range verifies", s)
		}
		if !bytes.Equal(s, sig) && !bytes.Equal(s, twin) {
			t.Fatalf("signature %x verifies and is not the genuine one", s)
		}
	})
}
