// Package spake2plus implements SPAKE2+ (RFC 9383) on P-256 with SHA-256 and
// HKDF, in the two suites the RFC's test vectors cover: CMAC-AES-128 (the one
// owner pairing uses, PROTOCOL.md 6.2) and HMAC-SHA256. The prover holds w0
// and w1, the verifier w0 and L = w1·G. Point operations are constant-time
// (filippo.io/nistec); the cofactor of P-256 is 1.
package spake2plus

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"

	"filippo.io/nistec"
	"golang.org/x/crypto/scrypt"

	"github.com/dkvehicled/dkvehicled/internal/cmac"
	"github.com/dkvehicled/dkvehicled/internal/secret"
)

// ErrBadShare reports a peer's share that is not a valid point, or the
// identity.
var ErrBadShare = errors.New("spake2plus: share is not a valid P-256 point")

// ErrConfirmation reports a confirmation MAC that does not match: the peer
// used another password (or the messages were changed).
var ErrConfirmation = errors.New("spake2plus: confirmation does not match")

// The RFC's M and N for P-256 (RFC 9383 section 4), compressed.
var (
	mPoint = mustPoint("02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f")
	nPoint = mustPoint("03d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49")
)

func mustPoint(h string) *nistec.P256Point {
	b, _ := hex.DecodeString(h)
	p, err := nistec.NewP256Point().SetBytes(b)
	if err != nil {
		panic(err)
	}
	return p
}

// M and N return the uncompressed encodings of the RFC's points.
func M() []byte { return mPoint.Bytes() }

// N returns the uncompressed encoding of the RFC's N.
func N() []byte { return nPoint.Bytes() }

// MAC is the suite's MAC for the confirmations.
type MAC int

// The two suites.
const (
	CMAC MAC = iota // P256-SHA256-HKDF-SHA256-CMAC-AES-128
	HMAC            // P256-SHA256-HKDF-SHA256-HMAC-SHA256
)

func (m MAC) keyLen() int {
	if m == CMAC {
		return 16
	}
	return sha256.Size
}

func (m MAC) sum(key, msg []byte) []byte {
	if m == CMAC {
		c, err := cmac.New(key)
		if err != nil {
			panic(err)
		}
		s := c.Sum(msg)
		return s[:]
	}
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// Params are the protocol's fixed inputs.
type Params struct {
	Context    []byte
	IDProver   []byte
	IDVerifier []byte
	MAC        MAC
}

// Result is what both sides compute once they hold both shares.
type Result struct {
	Z, V      []byte // uncompressed points
	TT        []byte // the transcript
	KMain     secret.Bytes
	KConfirmP secret.Bytes
	KConfirmV secret.Bytes
	ConfirmP  []byte // the prover's confirmation: MAC(KConfirmP, shareV)
	ConfirmV  []byte // the verifier's confirmation: MAC(KConfirmV, shareP)
	KShared   secret.Bytes
	ShareP    []byte
	ShareV    []byte
}

// scalar validates a 32-byte scalar in [1, n-1].
func scalar(b []byte) error {
	if len(b) != 32 {
		return errors.New("spake2plus: scalar of wrong length")
	}
	if _, err := ecdh.P256().NewPrivateKey(b); err != nil {
		return errors.New("spake2plus: scalar out of range")
	}
	return nil
}

// DrawScalar reads 32-byte candidates from r until one lies in [1, n-1].
func DrawScalar(r io.Reader) ([]byte, error) {
	b := make([]byte, 32)
	for range 64 {
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("spake2plus: drawing a scalar: %w", err)
		}
		if scalar(b) == nil {
			return b, nil
		}
	}
	return nil, errors.New("spake2plus: no valid scalar in 64 draws")
}

// share computes s·G + w0·P (P being M or N).
func share(s, w0 []byte, p *nistec.P256Point) ([]byte, error) {
	sg, err := nistec.NewP256Point().ScalarBaseMult(s)
	if err != nil {
		return nil, err
	}
	wp, err := nistec.NewP256Point().ScalarMult(p, w0)
	if err != nil {
		return nil, err
	}
	return nistec.NewP256Point().Add(sg, wp).Bytes(), nil
}

// unblind parses a peer's share and removes w0·P from it.
func unblind(peer, w0 []byte, p *nistec.P256Point) (*nistec.P256Point, error) {
	if len(peer) != 65 || peer[0] != 0x04 {
		return nil, ErrBadShare
	}
	q, err := nistec.NewP256Point().SetBytes(peer)
	if err != nil || q.IsInfinity() == 1 {
		return nil, ErrBadShare
	}
	wp, err := nistec.NewP256Point().ScalarMult(p, w0)
	if err != nil {
		return nil, err
	}
	return nistec.NewP256Point().Add(q, nistec.NewP256Point().Negate(wp)), nil
}

// Prover is the side that knows the password (w0, w1): the phone.
type Prover struct {
	params    Params
	w0, w1, x []byte
	shareP    []byte
}

// NewProver starts the prover with its secret scalar x and returns it; its
// share is Share().
func NewProver(p Params, w0, w1, x []byte) (*Prover, error) {
	for _, s := range [][]byte{w0, w1, x} {
		if err := scalar(s); err != nil {
			return nil, err
		}
	}
	sh, err := share(x, w0, mPoint)
	if err != nil {
		return nil, err
	}
	return &Prover{params: p, w0: w0, w1: w1, x: x, shareP: sh}, nil
}

// Share is X = x·G + w0·M.
func (p *Prover) Share() []byte { return p.shareP }

// Finish computes the keys from the verifier's share Y.
func (p *Prover) Finish(shareV []byte) (*Result, error) {
	t, err := unblind(shareV, p.w0, nPoint)
	if err != nil {
		return nil, err
	}
	z, err := nistec.NewP256Point().ScalarMult(t, p.x)
	if err != nil {
		return nil, err
	}
	v, err := nistec.NewP256Point().ScalarMult(t, p.w1)
	if err != nil {
		return nil, err
	}
	return finish(p.params, p.w0, p.shareP, shareV, z, v)
}

// Verifier is the side that holds w0 and L: the vehicle.
type Verifier struct {
	params Params
	w0, y  []byte
	l      *nistec.P256Point
	shareV []byte
}

// NewVerifier starts the verifier with its secret scalar y.
func NewVerifier(p Params, w0, l, y []byte) (*Verifier, error) {
	for _, s := range [][]byte{w0, y} {
		if err := scalar(s); err != nil {
			return nil, err
		}
	}
	lp, err := nistec.NewP256Point().SetBytes(l)
	if err != nil || lp.IsInfinity() == 1 {
		return nil, errors.New("spake2plus: L is not a valid point")
	}
	sh, err := share(y, w0, nPoint)
	if err != nil {
		return nil, err
	}
	return &Verifier{params: p, w0: w0, y: y, l: lp, shareV: sh}, nil
}

// Share is Y = y·G + w0·N.
func (v *Verifier) Share() []byte { return v.shareV }

// Finish computes the keys from the prover's share X. A share that is not a
// point of the curve, or the identity, is ErrBadShare.
func (v *Verifier) Finish(shareP []byte) (*Result, error) {
	t, err := unblind(shareP, v.w0, mPoint)
	if err != nil {
		return nil, err
	}
	z, err := nistec.NewP256Point().ScalarMult(t, v.y)
	if err != nil {
		return nil, err
	}
	vv, err := nistec.NewP256Point().ScalarMult(v.l, v.y)
	if err != nil {
		return nil, err
	}
	return finish(v.params, v.w0, shareP, v.shareV, z, vv)
}

func finish(p Params, w0, shareP, shareV []byte, z, v *nistec.P256Point) (*Result, error) {
	if z.IsInfinity() == 1 || v.IsInfinity() == 1 {
		return nil, ErrBadShare
	}
	r := &Result{Z: z.Bytes(), V: v.Bytes(), ShareP: shareP, ShareV: shareV}
	var tt []byte
	for _, f := range [][]byte{p.Context, p.IDProver, p.IDVerifier, M(), N(), shareP, shareV, r.Z, r.V, w0} {
		tt = binary.LittleEndian.AppendUint64(tt, uint64(len(f)))
		tt = append(tt, f...)
	}
	r.TT = tt
	kmain := sha256.Sum256(tt)
	r.KMain = kmain[:]
	n := p.MAC.keyLen()
	ck, err := hkdf.Key(sha256.New, r.KMain, nil, "ConfirmationKeys", 2*n)
	if err != nil {
		return nil, err
	}
	r.KConfirmP, r.KConfirmV = ck[:n], ck[n:]
	if r.KShared, err = hkdf.Key(sha256.New, r.KMain, nil, "SharedKey", sha256.Size); err != nil {
		return nil, err
	}
	r.ConfirmP = p.MAC.sum(r.KConfirmP, shareV)
	r.ConfirmV = p.MAC.sum(r.KConfirmV, shareP)
	return r, nil
}

// CheckConfirmP compares the prover's confirmation in constant time.
func (r *Result) CheckConfirmP(got []byte) error {
	if subtle.ConstantTimeCompare(got, r.ConfirmP) != 1 {
		return ErrConfirmation
	}
	return nil
}

// CheckConfirmV compares the verifier's confirmation in constant time.
func (r *Result) CheckConfirmV(got []byte) error {
	if subtle.ConstantTimeCompare(got, r.ConfirmV) != 1 {
		return ErrConfirmation
	}
	return nil
}

// order is n, the order of P-256.
var order, _ = new(big.Int).SetString("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", 16)

// Password derives w0 and w1 from a password as PROTOCOL.md 6.2 says:
// z = scrypt(password, salt, N, r, p, 80), w0 = (z[0:40] mod (n−1)) + 1,
// w1 = (z[40:80] mod (n−1)) + 1. It returns z too, for tests.
func Password(password, salt []byte, n, r, p int) (w0, w1, z secret.Bytes, err error) {
	z, err = scrypt.Key(password, salt, n, r, p, 80)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("spake2plus: scrypt: %w", err)
	}
	return reduce(z[:40]), reduce(z[40:]), z, nil
}

func reduce(b []byte) secret.Bytes {
	nm1 := new(big.Int).Sub(order, big.NewInt(1))
	v := new(big.Int).SetBytes(b)
	v.Mod(v, nm1).Add(v, big.NewInt(1))
	return v.FillBytes(make([]byte, 32))
}

// L returns w1·G, the verifier's record of w1.
func L(w1 []byte) ([]byte, error) {
	if err := scalar(w1); err != nil {
		return nil, err
	}
	p, err := nistec.NewP256Point().ScalarBaseMult(w1)
	if err != nil {
		return nil, err
	}
	return p.Bytes(), nil
}
