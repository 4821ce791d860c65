package pki

import (
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/dkvehicled/dkvehicled/internal/secret"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/pairing/spake2plus"
)

// The scrypt parameters of a verifier (PROTOCOL.md 6.2: N ≥ 4096, r = 8,
// p = 1, a 16-byte salt as SPAKE2+ REQUEST carries it). MaxScryptN is what a
// phone accepts to compute.
const (
	MinScryptN = 4096
	MaxScryptN = 1 << 20
	scryptR    = 8
	scryptP    = 1
	saltLen    = 16
)

// Verifier is the pairing verifier for one vehicle: what the OEM's backend
// derives from the pairing password and gives the vehicle (PROTOCOL.md 6.2).
// W0 and L never print; the verifier file holds them in hex.
type Verifier struct {
	W0   secret.Bytes // 32-byte scalar
	L    secret.Bytes // w1·G, 65-byte uncompressed point
	Salt []byte       // scrypt's salt, 16 bytes
	N    int          // scrypt's cost
	R    int          // scrypt's block size, 8
	P    int          // scrypt's parallelism, 1
}

// verifierFile is the verifier file's JSON.
type verifierFile struct {
	W0   *string `json:"w0"`
	L    *string `json:"L"`
	Salt *string `json:"salt"`
	N    *int    `json:"n"`
	R    *int    `json:"r"`
	P    *int    `json:"p"`
}

// NewVerifier derives the verifier of an 8-digit pairing password with a
// fresh random salt and scrypt cost n (r = 8, p = 1).
func NewVerifier(rand io.Reader, password string, n int) (*Verifier, error) {
	if !ValidPassword(password) {
		return nil, errors.New("pki: a pairing password is 8 decimal digits")
	}
	if err := checkParams(n, scryptR, scryptP); err != nil {
		return nil, err
	}
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return nil, fmt.Errorf("pki: drawing the salt: %w", err)
	}
	w0, w1, _, err := spake2plus.Password([]byte(password), salt, n, scryptR, scryptP)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	l, err := spake2plus.L(w1)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return &Verifier{W0: w0, L: l, Salt: salt, N: n, R: scryptR, P: scryptP}, nil
}

// ValidPassword reports whether p has the form of a pairing password: 8
// decimal digits (PROTOCOL.md 6.2).
func ValidPassword(p string) bool {
	if len(p) != 8 {
		return false
	}
	for _, c := range []byte(p) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func checkParams(n, r, p int) error {
	if n < MinScryptN || n > MaxScryptN || n&(n-1) != 0 {
		return fmt.Errorf("pki: verifier: scrypt N %d is not a power of two from %d to %d", n, MinScryptN, MaxScryptN)
	}
	if r != scryptR || p != scryptP {
		return fmt.Errorf("pki: verifier: scrypt r=%d p=%d, want r=%d p=%d", r, p, scryptR, scryptP)
	}
	return nil
}

// ParseVerifier parses and checks a verifier file: JSON
// {"w0":hex,"L":hex,"salt":hex,"n":int,"r":int,"p":int}, all fields required
// and no others, w0 a scalar in [1, n−1], L a P-256 point, a 16-byte salt,
// N a power of two from MinScryptN to MaxScryptN, r = 8 and p = 1. Its errors
// never contain w0 or L.
func ParseVerifier(b []byte) (*Verifier, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f verifierFile
	if err := dec.Decode(&f); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("pki: verifier: data after the JSON object")
	}
	if f.W0 == nil || f.L == nil || f.Salt == nil || f.N == nil || f.R == nil || f.P == nil {
		return nil, errors.New("pki: verifier: w0, L, salt, n, r and p are all required")
	}
	if err := checkParams(*f.N, *f.R, *f.P); err != nil {
		return nil, err
	}
	salt, err := hex.DecodeString(*f.Salt)
	if err != nil || len(salt) != saltLen {
		return nil, fmt.Errorf("pki: verifier: salt is not %d bytes of hex", saltLen)
	}
	w0, err := hex.DecodeString(*f.W0)
	if err == nil {
		_, err = ecdh.P256().NewPrivateKey(w0)
	}
	if err != nil {
		return nil, errors.New("pki: verifier: w0 is not a P-256 scalar in [1, n-1] in hex")
	}
	l, err := hex.DecodeString(*f.L)
	if err == nil {
		_, err = ecdh.P256().NewPublicKey(l)
	}
	if err != nil {
		return nil, errors.New("pki: verifier: L is not an uncompressed P-256 point in hex")
	}
	return &Verifier{W0: w0, L: l, Salt: salt, N: *f.N, R: *f.R, P: *f.P}, nil
}

// jsonError describes a JSON error without quoting the input, which may
// hold w0 or L.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("pki: verifier: not JSON (at byte %d)", syn.Offset)
	case errors.As(err, &typ) && typ.Field == "":
		return errors.New("pki: verifier: not a JSON object")
	case errors.As(err, &typ):
		return fmt.Errorf("pki: verifier: %s has the wrong JSON type", typ.Field)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("pki: verifier: truncated JSON")
	}
	return errors.New("pki: verifier: a field other than w0, L, salt, n, r and p")
}

// ReadVerifier reads and checks a verifier file (see ParseVerifier).
func ReadVerifier(path string) (*Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	v, err := ParseVerifier(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// WriteVerifier writes a verifier file that must not exist yet, readable by
// its owner only.
func WriteVerifier(path string, v *Verifier) error {
	b, err := v.marshal()
	if err != nil {
		return err
	}
	if err := writeNew(path, b, 0o600); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// marshal is the verifier file's JSON, the only place W0 and L are exposed.
func (v *Verifier) marshal() ([]byte, error) {
	w0, l, salt := hex.EncodeToString(v.W0.Expose()), hex.EncodeToString(v.L.Expose()), hex.EncodeToString(v.Salt)
	b, err := json.MarshalIndent(verifierFile{W0: &w0, L: &l, Salt: &salt, N: &v.N, R: &v.R, P: &v.P}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return append(b, '\n'), nil
}

// Keystore returns the verifier as the vehicle stores it, with attempts
// pairing attempts left.
func (v *Verifier) Keystore(attempts int) *keystore.Verifier {
	return &keystore.Verifier{
		W0: v.W0.Clone(), L: v.L.Clone(), Salt: append([]byte(nil), v.Salt...),
		N: v.N, R: v.R, P: v.P, AttemptsLeft: attempts,
	}
}
