// Package attestation encodes, signs, parses and verifies the friend
// attestation package of PROTOCOL.md 5: the owner's signature over a friend's
// key, its slot, its access profile and its validity window. Parsing is strict
// DER (golang.org/x/crypto/cryptobyte).
package attestation

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// Version is the only FriendKey version.
const Version = 1

// MaxFriendlyName is the longest friendly name, in bytes.
const MaxFriendlyName = 32

// VehicleIDLen is the length of the vehicle identifier in a package.
const VehicleIDLen = 8

// ErrMalformed reports a package that is not exactly the DER of PROTOCOL.md 5.
var ErrMalformed = errors.New("attestation: malformed package")

const timeLayout = "20060102150405Z"

// FriendKey is the signed content of a package.
type FriendKey struct {
	VehicleIdentifier []byte
	FriendPublicKey   []byte // 65 bytes
	SlotIdentifier    []byte
	Profile           int
	NotBefore         time.Time
	NotAfter          time.Time
	FriendlyName      string
	OwnerKeyID        keys.KeyID
}

// Package is a parsed attestation package.
type Package struct {
	FriendKey
	// TBS is the DER of the FriendKey as received; the signature covers it.
	TBS []byte
	// Signature is the owner's raw r‖s.
	Signature []byte
}

// Marshal returns the DER of the FriendKey.
func (f *FriendKey) Marshal() ([]byte, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(Version)
		b.AddASN1OctetString(f.VehicleIdentifier)
		b.AddASN1OctetString(f.FriendPublicKey)
		b.AddASN1OctetString(f.SlotIdentifier)
		b.AddASN1Int64(int64(f.Profile))
		b.AddASN1(casn1.GeneralizedTime, func(b *cryptobyte.Builder) {
			b.AddBytes([]byte(f.NotBefore.UTC().Format(timeLayout)))
		})
		b.AddASN1(casn1.GeneralizedTime, func(b *cryptobyte.Builder) {
			b.AddBytes([]byte(f.NotAfter.UTC().Format(timeLayout)))
		})
		b.AddASN1(casn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(f.FriendlyName)) })
		b.AddASN1OctetString(f.OwnerKeyID[:])
	})
	return b.Bytes()
}

func (f *FriendKey) check() error {
	switch {
	case len(f.VehicleIdentifier) != VehicleIDLen:
		return fmt.Errorf("attestation: vehicle identifier of %d bytes", len(f.VehicleIdentifier))
	case len(f.FriendPublicKey) != wire.PointLen:
		return fmt.Errorf("attestation: friend public key of %d bytes", len(f.FriendPublicKey))
	case len(f.SlotIdentifier) == 0 || len(f.SlotIdentifier) > 8:
		return fmt.Errorf("attestation: slot identifier of %d bytes", len(f.SlotIdentifier))
	case f.Profile < 0 || f.Profile > 255:
		return fmt.Errorf("attestation: profile %d", f.Profile)
	case len(f.FriendlyName) > MaxFriendlyName || !utf8.ValidString(f.FriendlyName):
		return fmt.Errorf("attestation: friendly name not UTF-8 of at most %d bytes", MaxFriendlyName)
	case f.NotAfter.Before(f.NotBefore):
		return errors.New("attestation: notAfter before notBefore")
	}
	return nil
}

// Sign builds the package: the FriendKey signed by the owner's endpoint key.
func Sign(owner *ecdsa.PrivateKey, f FriendKey) ([]byte, error) {
	tbs, err := f.Marshal()
	if err != nil {
		return nil, err
	}
	sig, err := keys.Sign(owner, tbs)
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		b.AddASN1OctetString(sig)
	})
	return b.Bytes()
}

// Verify checks the owner's signature over the FriendKey as received.
func (p *Package) Verify(owner *ecdsa.PublicKey) bool {
	return keys.Verify(owner, p.TBS, p.Signature)
}

// Parse decodes a package that fills der exactly.
func Parse(der []byte) (*Package, error) {
	in := cryptobyte.String(der)
	var outer, tbsFull cryptobyte.String
	if !in.ReadASN1(&outer, casn1.SEQUENCE) || !in.Empty() {
		return nil, fmt.Errorf("%w: outer SEQUENCE", ErrMalformed)
	}
	var sig []byte
	if !outer.ReadASN1Element(&tbsFull, casn1.SEQUENCE) ||
		!outer.ReadASN1Bytes(&sig, casn1.OCTET_STRING) || !outer.Empty() {
		return nil, fmt.Errorf("%w: package fields", ErrMalformed)
	}
	if len(sig) != wire.SignatureLen {
		return nil, fmt.Errorf("%w: signature of %d bytes", ErrMalformed, len(sig))
	}
	p := &Package{TBS: []byte(tbsFull), Signature: sig}
	var tbs cryptobyte.String
	if !tbsFull.ReadASN1(&tbs, casn1.SEQUENCE) {
		return nil, fmt.Errorf("%w: FriendKey", ErrMalformed)
	}
	var version, profile int64
	var ownerKeyID, name []byte
	var nb, na cryptobyte.String
	f := &p.FriendKey
	if !tbs.ReadASN1Integer(&version) ||
		!tbs.ReadASN1Bytes(&f.VehicleIdentifier, casn1.OCTET_STRING) ||
		!tbs.ReadASN1Bytes(&f.FriendPublicKey, casn1.OCTET_STRING) ||
		!tbs.ReadASN1Bytes(&f.SlotIdentifier, casn1.OCTET_STRING) ||
		!tbs.ReadASN1Integer(&profile) ||
		!tbs.ReadASN1(&nb, casn1.GeneralizedTime) ||
		!tbs.ReadASN1(&na, casn1.GeneralizedTime) ||
		!tbs.ReadASN1Bytes(&name, casn1.UTF8String) ||
		!tbs.ReadASN1Bytes(&ownerKeyID, casn1.OCTET_STRING) ||
		!tbs.Empty() {
		return nil, fmt.Errorf("%w: FriendKey fields", ErrMalformed)
	}
	if version != Version {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, version)
	}
	if len(ownerKeyID) != wire.KeyIDLen {
		return nil, fmt.Errorf("%w: ownerKeyID of %d bytes", ErrMalformed, len(ownerKeyID))
	}
	f.OwnerKeyID = keys.KeyID(ownerKeyID)
	f.Profile = int(profile)
	f.FriendlyName = string(name)
	var err error
	if f.NotBefore, err = parseTime(nb); err != nil {
		return nil, err
	}
	if f.NotAfter, err = parseTime(na); err != nil {
		return nil, err
	}
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return p, nil
}

// parseTime accepts exactly YYYYMMDDHHMMSSZ.
func parseTime(s []byte) (time.Time, error) {
	if len(s) != len(timeLayout) {
		return time.Time{}, fmt.Errorf("%w: time %q", ErrMalformed, s)
	}
	for i, c := range s[:14] {
		if c < '0' || c > '9' {
			return time.Time{}, fmt.Errorf("%w: time %q (byte %d)", ErrMalformed, s, i)
		}
	}
	t, err := time.Parse(timeLayout, string(s))
	if err != nil || t.Format(timeLayout) != string(s) {
		return time.Time{}, fmt.Errorf("%w: time %q", ErrMalformed, s)
	}
	return t, nil
}
