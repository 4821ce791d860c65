// Package wire holds every byte value of the Digital Key applet protocol that
// both sides share (PROTOCOL.md sections 3 to 5 and 9): the two profiles,
// instruction codes, tags, CONTROL FLOW reasons, the mailbox layout and the
// EXCHANGE operations. Values marked [profile] in PROTOCOL.md live here and
// nowhere else, so an integrator holding the real specification changes them
// in one place.
package wire

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Version is an applet version, 2 bytes big-endian on the wire.
type Version uint16

// String formats the version as 4 hex digits.
func (v Version) String() string { return fmt.Sprintf("%04x", uint16(v)) }

// Bytes returns the 2-byte wire form.
func (v Version) Bytes() []byte { return []byte{byte(v >> 8), byte(v)} }

// Profile is one flavour of the protocol (PROTOCOL.md 9).
type Profile struct {
	// Name is "ccc" or "homekey".
	Name string
	// AppletAID is the AID of the applet selected at the start of a tap.
	AppletAID []byte
	// Versions are the applet versions the vehicle supports, preferred first.
	Versions []Version
	// IdentifierLen is the length of the identifier sent in AUTH0 tag 4D.
	IdentifierLen int
	// VersionListInInfo inserts the endpoint's whole version list into the
	// HKDF info strings (homekey).
	VersionListInInfo bool
	// EndpointIDIn4E says that AUTH1 tag 4E carries SHA-1(endpoint.PK)[0:6]
	// instead of a slot identifier (homekey); such a profile has no slots,
	// mailboxes, attestation or immobilizer.
	EndpointIDIn4E bool
}

// CCC is the default profile and the only one the daemon uses in production.
var CCC = Profile{
	Name:          "ccc",
	AppletAID:     []byte{0xA0, 0x00, 0x00, 0x08, 0x09, 0x43, 0x43, 0x43, 0x44, 0x4B, 0x41, 0x76, 0x31},
	Versions:      []Version{0x0100},
	IdentifierLen: 8,
}

// HomeKey is the interoperability profile of PROTOCOL.md 9.
var HomeKey = Profile{
	Name:              "homekey",
	AppletAID:         []byte{0xA0, 0x00, 0x00, 0x08, 0x58, 0x01, 0x01},
	Versions:          []Version{0x0200},
	IdentifierLen:     16,
	VersionListInInfo: true,
	EndpointIDIn4E:    true,
}

// ProfileByName returns the named profile.
func ProfileByName(name string) (Profile, error) {
	switch strings.ToLower(name) {
	case "", "ccc":
		return CCC, nil
	case "homekey":
		return HomeKey, nil
	}
	return Profile{}, fmt.Errorf("unknown protocol profile %q (want ccc or homekey)", name)
}

// Supports reports whether the vehicle supports version v in this profile.
func (p Profile) Supports(v Version) bool {
	for _, s := range p.Versions {
		if s == v {
			return true
		}
	}
	return false
}

// Instruction classes and codes.
const (
	CLAISO       byte = 0x00
	CLAProp      byte = 0x80
	CLASecure    byte = 0x84
	INSSelect    byte = 0xA4
	INSAuth0     byte = 0x80
	INSAuth1     byte = 0x81
	INSExchange  byte = 0xC9
	INSControl   byte = 0x3C
	INSGetResp   byte = 0xC0
	P1SelectName byte = 0x04
)

// Tags of the applet protocol.
const (
	TagVersions     uint16 = 0x5C
	TagVehicleEPK   uint16 = 0x87
	TagTxID         uint16 = 0x4C
	TagVehicleID    uint16 = 0x4D
	TagEndpointEPK  uint16 = 0x86
	TagCryptogram   uint16 = 0x9D
	TagSignature    uint16 = 0x9E
	TagIdentifier   uint16 = 0x4E
	TagUsage        uint16 = 0x93
	TagExchangeData uint16 = 0x53
	TagExchangeStat uint16 = 0x99
)

// AUTH0 P1 values.
const (
	P1Standard byte = 0x00
	P1Fast     byte = 0x01
)

// Transaction codes (AUTH0 P2).
const (
	TxAccess      byte = 0x01
	TxEngineStart byte = 0x02
)

// Fixed lengths.
const (
	PointLen      = 65
	ScalarLen     = 32
	TxIDLen       = 16
	CryptogramLen = 16
	SignatureLen  = 64
	KeyIDLen      = 20
	// HomeKeyEndpointIDLen is the length of the homekey endpoint identifier in 4E.
	HomeKeyEndpointIDLen = 6
)

// Key-schedule constants (PROTOCOL.md 3.3, 3.4).
var (
	InterfaceNFC      byte = 0x5E
	LabelVolatile          = []byte("Volatile")
	LabelPersistent        = []byte("Persistent")
	LabelVolatileFast      = []byte("VolatileFast")
	UsageVehicle           = []byte{0x41, 0x5D, 0x95, 0x69}
	UsageEndpoint          = []byte{0x4E, 0x88, 0x7B, 0x4C}
)

// Reason is the P2 of CONTROL FLOW (PROTOCOL.md 3.7).
type Reason byte

// CONTROL FLOW reasons.
const (
	ReasonNone          Reason = 0x00
	ReasonUnknownKey    Reason = 0x01
	ReasonKeyNotValid   Reason = 0x02
	ReasonNotPermitted  Reason = 0x03
	ReasonAttestation   Reason = 0x04
	ReasonTokenMismatch Reason = 0x05
	ReasonProtocol      Reason = 0x06
	ReasonTimeout       Reason = 0x07
	ReasonDisabled      Reason = 0x08
)

// String names the reason for logs, events and tables.
func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonUnknownKey:
		return "unknown_key"
	case ReasonKeyNotValid:
		return "key_not_valid"
	case ReasonNotPermitted:
		return "not_permitted"
	case ReasonAttestation:
		return "attestation_rejected"
	case ReasonTokenMismatch:
		return "immobilizer_token_mismatch"
	case ReasonProtocol:
		return "protocol_error"
	case ReasonTimeout:
		return "timeout"
	case ReasonDisabled:
		return "digital_key_disabled"
	case ReasonBadPoint:
		return "bad_point"
	case ReasonNoVerifier:
		return "no_verifier"
	case ReasonNoVersion:
		return "no_common_version"
	case ReasonConfirmation:
		return "confirmation_mismatch"
	case ReasonChainRejected:
		return "certificate_rejected"
	}
	return fmt.Sprintf("reason_%02x", byte(r))
}

// ControlFlow returns the CONTROL FLOW command: success with reason none, or
// failure with the reason.
func ControlFlow(success bool, r Reason) []byte {
	p1 := byte(0x00)
	if success {
		p1 = 0x01
	}
	return []byte{CLAProp, INSControl, p1, byte(r)}
}

// EncodeVersions returns the value of a 5C version list.
func EncodeVersions(vs []Version) []byte {
	b := make([]byte, 0, 2*len(vs))
	for _, v := range vs {
		b = append(b, v.Bytes()...)
	}
	return b
}

// DecodeVersions parses the value of a 5C version list: a non-empty even
// number of bytes.
func DecodeVersions(b []byte) ([]Version, error) {
	if len(b) == 0 || len(b)%2 != 0 {
		return nil, fmt.Errorf("version list of %d bytes", len(b))
	}
	vs := make([]Version, len(b)/2)
	for i := range vs {
		vs[i] = Version(binary.BigEndian.Uint16(b[2*i:]))
	}
	return vs, nil
}
