package pn532

import "fmt"

// Target is a 106 kbps type A target activated by InListPassiveTarget.
type Target struct {
	// Tg is the chip's logical number for the target.
	Tg byte
	// ATQA is the target's SENS_RES, as the chip reports it.
	ATQA uint16
	// SAK is the target's SEL_RES.
	SAK byte
	// UID is the target's NFCID1 (phones send a random one).
	UID []byte
	// ATS is the answer to RATS, empty when the target sent none.
	ATS []byte
}

// ISODEP reports whether the SAK announces ISO/IEC 14443-4 (bit 6, 0x20).
// The driver returns targets without it too: a SELECT decides.
func (t Target) ISODEP() bool { return t.SAK&0x20 != 0 }

// parseTarget parses the answer of InListPassiveTarget at 106 kbps type A:
// NbTg, then Tg, SENS_RES (2), SEL_RES, NFCIDLength, NFCID1, and the ATS
// (whose first byte is its length) when the chip got one. It returns the
// first target, or nil when NbTg is 0.
func parseTarget(r []byte) (*Target, error) {
	if len(r) < 1 {
		return nil, fmt.Errorf("%w: empty target list", ErrFrame)
	}
	if r[0] == 0 {
		return nil, nil
	}
	b := r[1:]
	if len(b) < 5 || len(b) < 5+int(b[4]) {
		return nil, fmt.Errorf("%w: short target data", ErrFrame)
	}
	end := 5 + int(b[4]) // in int: 5+b[4] would wrap around past 255
	t := &Target{
		Tg:   b[0],
		ATQA: uint16(b[1])<<8 | uint16(b[2]),
		SAK:  b[3],
		UID:  append([]byte(nil), b[5:end]...),
	}
	if rest := b[end:]; len(rest) > 0 {
		if rest[0] == 0 || int(rest[0]) > len(rest) {
			return nil, fmt.Errorf("%w: ATS length %d", ErrFrame, rest[0])
		}
		t.ATS = append([]byte(nil), rest[:rest[0]]...)
	}
	return t, nil
}
