package wire

import "fmt"

// SigBmp bits (PROTOCOL.md 4).
const (
	SigRefill      byte = 0x01 // slot identifiers need refill
	SigChanged     byte = 0x02 // slot identifiers changed
	SigOEMData     byte = 0x04 // OEM data present
	SigAttestation byte = 0x08 // attestation present
)

// Entries is the number of SlotIdentLst and confidential-mailbox entries.
const Entries = 8

// Offsets of the two bitmaps in the private mailbox.
const (
	OffsetSigBmp       = 0
	OffsetSlotIdentBmp = 1
	OffsetSlotIdentLst = 2
)

// Layout holds the configurable sizes of PROTOCOL.md 2 and 4.
type Layout struct {
	SlotIDLen      int // SLOT_ID_LEN, at most 8
	TokenLen       int // IMMO_TOKEN_LEN, at most 16
	OEMDataLen     int // OEM_DATA_LEN
	AttestationLen int // ATTESTATION_LEN
}

// DefaultLayout is the layout the vectors use.
var DefaultLayout = Layout{SlotIDLen: 8, TokenLen: 16, OEMDataLen: 32, AttestationLen: 512}

// Validate checks the limits of PROTOCOL.md 2: slot identifiers and tokens may
// be smaller than the defaults, never larger, and the areas must be addressable
// with 2-byte offsets.
func (l Layout) Validate() error {
	switch {
	case l.SlotIDLen < 1 || l.SlotIDLen > 8:
		return fmt.Errorf("slot identifier length %d: want 1 to 8", l.SlotIDLen)
	case l.TokenLen < 1 || l.TokenLen > 16:
		return fmt.Errorf("immobilizer token length %d: want 1 to 16", l.TokenLen)
	case l.OEMDataLen < 0 || l.OEMDataLen > 1024:
		return fmt.Errorf("OEM data length %d: want 0 to 1024", l.OEMDataLen)
	case l.AttestationLen < 64 || l.AttestationLen > 4096:
		return fmt.Errorf("attestation length %d: want 64 to 4096", l.AttestationLen)
	}
	return nil
}

// SlotEntry is the private-mailbox offset of SlotIdentLst entry i.
func (l Layout) SlotEntry(i int) int { return OffsetSlotIdentLst + i*l.SlotIDLen }

// OEMData is the private-mailbox offset of the OEM data.
func (l Layout) OEMData() int { return l.SlotEntry(Entries) }

// Attestation is the private-mailbox offset of the attestation area.
func (l Layout) Attestation() int { return l.OEMData() + l.OEMDataLen }

// PrivateLen is the size of the private mailbox.
func (l Layout) PrivateLen() int { return l.Attestation() + l.AttestationLen }

// TokenEntry is the confidential-mailbox offset of entry i.
func (l Layout) TokenEntry(i int) int { return i * l.TokenLen }

// ConfidentialLen is the size of the confidential mailbox.
func (l Layout) ConfidentialLen() int { return Entries * l.TokenLen }
