package keys

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"hash"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/internal/secret"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// SessionKeys key one secure channel.
type SessionKeys struct {
	Enc, Mac, Rmac secret.Bytes
}

// Transcript holds the values of one transaction that enter its key schedule.
type Transcript struct {
	Profile wire.Profile
	// Version is the selected applet version.
	Version wire.Version
	// EndpointVersions is the value of the endpoint's 5C list from SELECT
	// (used by the homekey profile).
	EndpointVersions []byte
	VehicleEPK       []byte // 65 bytes
	EndpointEPK      []byte // 65 bytes
	TxID             []byte // 16 bytes
	P1, P2           byte
}

func (t *Transcript) versionTLVs(b []byte, listFirst bool) []byte {
	sel := apdu.EncodeTLV(wire.TagVersions, t.Version.Bytes())
	if !t.Profile.VersionListInInfo {
		return append(b, sel...)
	}
	list := apdu.EncodeTLV(wire.TagVersions, t.EndpointVersions)
	if listFirst {
		return append(append(b, list...), sel...)
	}
	return append(append(b, sel...), list...)
}

// StandardInfo is the HKDF info of AUTH1 for a label (Volatile or Persistent):
// vehicle_ePK.x ‖ endpoint_ePK.x ‖ txid ‖ 5E ‖ P1 ‖ P2 ‖ label ‖ 5C 02 ver
// (homekey appends the endpoint's whole version list).
func (t *Transcript) StandardInfo(label []byte) []byte {
	b := make([]byte, 0, 160)
	b = append(b, X(t.VehicleEPK)...)
	b = append(b, X(t.EndpointEPK)...)
	b = append(b, t.TxID...)
	b = append(b, wire.InterfaceNFC, t.P1, t.P2)
	b = append(b, label...)
	return t.versionTLVs(b, false)
}

// FastInfo is the HKDF info of the fast path for one stored endpoint:
// vehicle.PK.x ‖ "VolatileFast" ‖ vehicle_identifier ‖ endpoint.PK.x ‖ 5E ‖
// 5C 02 ver ‖ vehicle_ePK.x ‖ txid ‖ P1 ‖ P2 ‖ endpoint_ePK.x (homekey inserts
// the endpoint's version list before 5C 02 ver).
func (t *Transcript) FastInfo(vehiclePK, vehicleID, endpointPK []byte) []byte {
	b := t.FastInfoPrefix(vehiclePK, vehicleID)
	return t.AppendFastInfo(b, endpointPK)
}

// FastInfoPrefix is the part of FastInfo before endpoint.PK.x, the same for
// every candidate of one transaction.
func (t *Transcript) FastInfoPrefix(vehiclePK, vehicleID []byte) []byte {
	b := make([]byte, 0, 200)
	b = append(b, X(vehiclePK)...)
	b = append(b, wire.LabelVolatileFast...)
	return append(b, vehicleID...)
}

// AppendFastInfo appends endpoint.PK.x and the rest of FastInfo to prefix.
func (t *Transcript) AppendFastInfo(prefix, endpointPK []byte) []byte {
	b := append(prefix, X(endpointPK)...)
	b = append(b, wire.InterfaceNFC)
	b = t.versionTLVs(b, true)
	b = append(b, X(t.VehicleEPK)...)
	b = append(b, t.TxID...)
	b = append(b, t.P1, t.P2)
	return append(b, X(t.EndpointEPK)...)
}

// DeriveStandard derives the AUTH1 session keys and Kpersistent from Kdh.
func (t *Transcript) DeriveStandard(kdh secret.Bytes) (SessionKeys, secret.Bytes) {
	vol := hkdfKey(kdh, t.StandardInfo(wire.LabelVolatile), 48)
	per := hkdfKey(kdh, t.StandardInfo(wire.LabelPersistent), 32)
	return SessionKeys{Enc: vol[0:16], Mac: vol[16:32], Rmac: vol[32:48]}, per
}

func hkdfKey(ikm secret.Bytes, info []byte, n int) secret.Bytes {
	k, err := hkdf.Key(sha256.New, ikm, nil, string(info), n)
	if err != nil {
		panic(err) // n is always within HKDF's limit
	}
	return k
}

// TBS returns the data the AUTH1 signatures cover:
// 4D vehicle_identifier ‖ 86 endpoint_ePK.x ‖ 87 vehicle_ePK.x ‖ 4C txid ‖ 93 usage.
func TBS(vehicleID, endpointEPK, vehicleEPK, txid, usage []byte) []byte {
	b := make([]byte, 0, 128)
	b = apdu.AppendTLV(b, wire.TagVehicleID, vehicleID)
	b = apdu.AppendTLV(b, wire.TagEndpointEPK, X(endpointEPK))
	b = apdu.AppendTLV(b, wire.TagVehicleEPK, X(vehicleEPK))
	b = apdu.AppendTLV(b, wire.TagTxID, txid)
	return apdu.AppendTLV(b, wire.TagUsage, usage)
}

// FastKey is a Kpersistent prepared for the fast path: the HKDF extract step,
// which depends only on the stored key, is done once, so each candidate costs
// one HMAC. A FastKey is not safe for concurrent use.
type FastKey struct {
	mac hash.Hash
}

// NewFastKey runs HKDF-Extract (empty salt) on Kpersistent.
func NewFastKey(kpersistent secret.Bytes) *FastKey {
	prk, err := hkdf.Extract(sha256.New, kpersistent, nil)
	if err != nil {
		panic(err)
	}
	return &FastKey{mac: hmac.New(sha256.New, prk)}
}

// Cryptogram returns the expected fast cryptogram, OKM[0:16], for info.
func (f *FastKey) Cryptogram(info []byte) [wire.CryptogramLen]byte {
	var t1 [sha256.Size]byte
	f.block(t1[:0], nil, info, 1)
	return [wire.CryptogramLen]byte(t1[:wire.CryptogramLen])
}

// OKM returns the whole 64-byte fast-path output: cryptogram, Kenc, Kmac, Krmac.
func (f *FastKey) OKM(info []byte) secret.Bytes {
	okm := make([]byte, 0, 2*sha256.Size)
	okm = f.block(okm, nil, info, 1)
	okm = f.block(okm, okm[0:sha256.Size], info, 2)
	return okm
}

// SessionFromOKM splits a fast-path OKM into its session keys.
func SessionFromOKM(okm secret.Bytes) SessionKeys {
	return SessionKeys{Enc: okm[16:32], Mac: okm[32:48], Rmac: okm[48:64]}
}

// block appends T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i) to dst.
func (f *FastKey) block(dst, prev, info []byte, i byte) []byte {
	f.mac.Reset()
	f.mac.Write(prev)
	f.mac.Write(info)
	f.mac.Write([]byte{i})
	return f.mac.Sum(dst)
}
