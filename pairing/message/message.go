// Package message encodes and parses the messages of owner pairing
// (PROTOCOL.md 6.1 and 6.3) for both sides: the framework's SELECT answer,
// SPAKE2+ REQUEST and VERIFY, the key creation data of WRITE DATA and the
// answer to GET DATA. Parsing is strict about what it needs and skips
// unknown tags, like every parser of the protocol.
package message

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// ErrMalformed reports a message that does not have the layout of
// PROTOCOL.md 6.
var ErrMalformed = errors.New("pairing: malformed message")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// Select is the framework's answer to SELECT.
type Select struct {
	FrameworkVersions []wire.Version // 5A
	AppletVersions    []byte         // 5C, raw
	Ready             byte           // D4
}

// Encode returns the answer's data.
func (s Select) Encode() []byte {
	b := apdu.EncodeTLV(wire.TagFrameworkVersions, wire.EncodeVersions(s.FrameworkVersions))
	b = apdu.AppendTLV(b, wire.TagVersions, s.AppletVersions)
	return apdu.AppendTLV(b, wire.TagPairingReady, []byte{s.Ready})
}

// ParseSelect parses the framework's answer to SELECT.
func ParseSelect(data []byte) (*Select, error) {
	f, err := apdu.Fields(data, wire.TagFrameworkVersions, wire.TagVersions, wire.TagPairingReady)
	if err != nil {
		return nil, malformed("%v", err)
	}
	fv, ok1 := f[wire.TagFrameworkVersions]
	av, ok2 := f[wire.TagVersions]
	ready, ok3 := f[wire.TagPairingReady]
	if !ok1 || !ok2 || !ok3 || len(ready) != 1 {
		return nil, malformed("SELECT answer without 5A, 5C and a one-byte D4")
	}
	vs, err := wire.DecodeVersions(fv)
	if err != nil {
		return nil, malformed("5A: %v", err)
	}
	if _, err := wire.DecodeVersions(av); err != nil {
		return nil, malformed("5C: %v", err)
	}
	return &Select{FrameworkVersions: vs, AppletVersions: av, Ready: ready[0]}, nil
}

// Scrypt are the password-derivation parameters the vehicle sends.
type Scrypt struct {
	Salt    []byte
	N, R, P int
}

// Request is SPAKE2+ REQUEST's data.
type Request struct {
	Version        wire.Version // 5B
	AppletVersions []byte       // 5C, the vehicle's
	Scrypt         Scrypt
	Brand          []byte // D6, 2 bytes
}

// Encode returns REQUEST's data.
func (r Request) Encode() []byte {
	var sp []byte
	sp = apdu.AppendTLV(sp, wire.TagScryptSalt, r.Scrypt.Salt)
	sp = apdu.AppendTLV(sp, wire.TagScryptN, binary.BigEndian.AppendUint32(nil, uint32(r.Scrypt.N)))
	sp = apdu.AppendTLV(sp, wire.TagScryptR, binary.BigEndian.AppendUint16(nil, uint16(r.Scrypt.R)))
	sp = apdu.AppendTLV(sp, wire.TagScryptP, binary.BigEndian.AppendUint16(nil, uint16(r.Scrypt.P)))
	b := apdu.EncodeTLV(wire.TagSpakeVersion, r.Version.Bytes())
	b = apdu.AppendTLV(b, wire.TagVersions, r.AppletVersions)
	b = apdu.AppendTLV(b, wire.TagScryptParams, sp)
	return apdu.AppendTLV(b, wire.TagBrand, r.Brand)
}

// ParseRequest parses REQUEST's data (the phone's side).
func ParseRequest(data []byte) (*Request, error) {
	f, err := apdu.Fields(data, wire.TagSpakeVersion, wire.TagVersions, wire.TagScryptParams, wire.TagBrand)
	if err != nil {
		return nil, malformed("%v", err)
	}
	v, sp, av, brand := f[wire.TagSpakeVersion], f[wire.TagScryptParams], f[wire.TagVersions], f[wire.TagBrand]
	if len(v) != 2 || sp == nil || len(brand) != 2 {
		return nil, malformed("REQUEST without 5B, 7F50 and D6")
	}
	if _, err := wire.DecodeVersions(av); err != nil {
		return nil, malformed("5C: %v", err)
	}
	s, err := apdu.Fields(sp, wire.TagScryptSalt, wire.TagScryptN, wire.TagScryptR, wire.TagScryptP)
	if err != nil {
		return nil, malformed("7F50: %v", err)
	}
	salt, n, r, p := s[wire.TagScryptSalt], s[wire.TagScryptN], s[wire.TagScryptR], s[wire.TagScryptP]
	if len(salt) == 0 || len(n) != 4 || len(r) != 2 || len(p) != 2 {
		return nil, malformed("7F50 without salt, N, r and p")
	}
	return &Request{
		Version: wire.Version(binary.BigEndian.Uint16(v)), AppletVersions: av, Brand: brand,
		Scrypt: Scrypt{Salt: salt, N: int(binary.BigEndian.Uint32(n)), R: int(binary.BigEndian.Uint16(r)), P: int(binary.BigEndian.Uint16(p))},
	}, nil
}

// one returns the only value of tag in data, of exactly n bytes (n < 0:
// any length).
func one(data []byte, tag uint16, n int) ([]byte, error) {
	f, err := apdu.Fields(data, tag)
	if err != nil {
		return nil, malformed("%v", err)
	}
	v, ok := f[tag]
	if !ok || (n >= 0 && len(v) != n) {
		return nil, malformed("no %d-byte %X", n, tag)
	}
	return v, nil
}

// ParseShareX parses REQUEST's answer: 50 41 X.
func ParseShareX(data []byte) ([]byte, error) { return one(data, wire.TagShareX, wire.PointLen) }

// Verify is SPAKE2+ VERIFY's data.
type Verify struct {
	ShareY   []byte
	ConfirmV []byte
}

// Encode returns VERIFY's data.
func (v Verify) Encode() []byte {
	return apdu.AppendTLV(apdu.EncodeTLV(wire.TagShareY, v.ShareY), wire.TagConfirmV, v.ConfirmV)
}

// ParseVerify parses VERIFY's data (the phone's side).
func ParseVerify(data []byte) (*Verify, error) {
	f, err := apdu.Fields(data, wire.TagShareY, wire.TagConfirmV)
	if err != nil {
		return nil, malformed("%v", err)
	}
	y, c := f[wire.TagShareY], f[wire.TagConfirmV]
	if len(y) != wire.PointLen || len(c) != 16 {
		return nil, malformed("VERIFY without a 65-byte 52 and a 16-byte 57")
	}
	return &Verify{ShareY: y, ConfirmV: c}, nil
}

// ParseConfirmP parses VERIFY's answer: 58 10 confirmP.
func ParseConfirmP(data []byte) ([]byte, error) { return one(data, wire.TagConfirmP, 16) }

// KeyCreation is the plaintext of WRITE DATA.
type KeyCreation struct {
	VehicleIdentifier []byte
	VehicleCert       []byte // DER
	Intermediate      []byte // DER, nil when none
	AuthorizedPK      []byte // the vehicle OEM root's key
	OwnerSlot         []byte
	AppletVersions    []byte
	Layout            wire.Layout
}

// Encode returns the key creation data.
func (k KeyCreation) Encode() []byte {
	b := apdu.EncodeTLV(wire.TagVehicleID, k.VehicleIdentifier)
	b = apdu.AppendTLV(b, wire.TagVehicleCert, k.VehicleCert)
	if k.Intermediate != nil {
		b = apdu.AppendTLV(b, wire.TagVehicleInterCert, k.Intermediate)
	}
	b = apdu.AppendTLV(b, wire.TagAuthorizedPK, k.AuthorizedPK)
	b = apdu.AppendTLV(b, wire.TagOwnerSlot, k.OwnerSlot)
	b = apdu.AppendTLV(b, wire.TagVersions, k.AppletVersions)
	var l []byte
	l = apdu.AppendTLV(l, 0x80, []byte{byte(k.Layout.SlotIDLen)})
	l = apdu.AppendTLV(l, 0x81, []byte{byte(k.Layout.TokenLen)})
	l = apdu.AppendTLV(l, 0x82, binary.BigEndian.AppendUint16(nil, uint16(k.Layout.OEMDataLen)))
	l = apdu.AppendTLV(l, 0x83, binary.BigEndian.AppendUint16(nil, uint16(k.Layout.AttestationLen)))
	return apdu.AppendTLV(b, wire.TagLayout, l)
}

// ParseKeyCreation parses WRITE DATA's plaintext (the phone's side).
func ParseKeyCreation(data []byte) (*KeyCreation, error) {
	f, err := apdu.Fields(data, wire.TagVehicleID, wire.TagVehicleCert, wire.TagVehicleInterCert, wire.TagAuthorizedPK, wire.TagOwnerSlot, wire.TagVersions, wire.TagLayout)
	if err != nil {
		return nil, malformed("%v", err)
	}
	k := &KeyCreation{
		VehicleIdentifier: f[wire.TagVehicleID], VehicleCert: f[wire.TagVehicleCert], Intermediate: f[wire.TagVehicleInterCert],
		AuthorizedPK: f[wire.TagAuthorizedPK], OwnerSlot: f[wire.TagOwnerSlot], AppletVersions: f[wire.TagVersions],
	}
	if len(k.VehicleIdentifier) == 0 || len(k.VehicleCert) == 0 || len(k.AuthorizedPK) != wire.PointLen || len(k.OwnerSlot) == 0 || k.AppletVersions == nil {
		return nil, malformed("key creation data without 4D, 7F21, 81, 4E and 5C")
	}
	l, err := apdu.Fields(f[wire.TagLayout], 0x80, 0x81, 0x82, 0x83)
	if err != nil {
		return nil, malformed("A1: %v", err)
	}
	if len(l[0x80]) != 1 || len(l[0x81]) != 1 || len(l[0x82]) != 2 || len(l[0x83]) != 2 {
		return nil, malformed("A1 without its four sizes")
	}
	k.Layout = wire.Layout{SlotIDLen: int(l[0x80][0]), TokenLen: int(l[0x81][0]),
		OEMDataLen: int(binary.BigEndian.Uint16(l[0x82])), AttestationLen: int(binary.BigEndian.Uint16(l[0x83]))}
	if err := k.Layout.Validate(); err != nil || len(k.OwnerSlot) != k.Layout.SlotIDLen {
		return nil, malformed("layout: %v", err)
	}
	return k, nil
}

// Created is the phone's answer to GET DATA: its certificate chain and the
// creation signature.
type Created struct {
	EndpointCert []byte // DER
	InstanceCA   []byte // DER
	DeviceCA     []byte // DER
	Signature    []byte // r‖s over key creation data ‖ endpoint.PK
}

// Encode returns the 7F20 object.
func (c Created) Encode() []byte {
	var b []byte
	b = apdu.AppendTLV(b, wire.TagEndpointCert, c.EndpointCert)
	b = apdu.AppendTLV(b, wire.TagInstanceCACert, c.InstanceCA)
	b = apdu.AppendTLV(b, wire.TagDeviceCACert, c.DeviceCA)
	b = apdu.AppendTLV(b, wire.TagSignature, c.Signature)
	return apdu.EncodeTLV(wire.TagKeyCreation, b)
}

// ParseCreated parses GET DATA's plaintext.
func ParseCreated(data []byte) (*Created, error) {
	outer, err := one(data, wire.TagKeyCreation, -1)
	if err != nil {
		return nil, err
	}
	f, err := apdu.Fields(outer, wire.TagEndpointCert, wire.TagInstanceCACert, wire.TagDeviceCACert, wire.TagSignature)
	if err != nil {
		return nil, malformed("7F20: %v", err)
	}
	c := &Created{EndpointCert: f[wire.TagEndpointCert], InstanceCA: f[wire.TagInstanceCACert], DeviceCA: f[wire.TagDeviceCACert], Signature: f[wire.TagSignature]}
	if len(c.EndpointCert) == 0 || len(c.InstanceCA) == 0 || len(c.DeviceCA) == 0 || len(c.Signature) != wire.SignatureLen {
		return nil, malformed("7F20 without three certificates and a 64-byte signature")
	}
	return c, nil
}
