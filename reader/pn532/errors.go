package pn532

import (
	"errors"
	"fmt"

	"github.com/dkvehicled/dkvehicled/reader"
)

// Errors a caller can test with errors.Is.
var (
	// ErrTimeout reports that the chip did not answer within the timeout.
	// The driver has sent an ACK to abort the command.
	ErrTimeout = errors.New("pn532: timeout")
	// ErrChecksum reports a frame whose length (LCS) or data (DCS) checksum
	// is wrong.
	ErrChecksum = errors.New("pn532: bad checksum")
	// ErrFrame reports bytes that are not a well-formed frame, or a frame
	// that is not the expected one.
	ErrFrame = errors.New("pn532: malformed frame")
	// ErrNACK reports that the chip answered a command with a NACK frame.
	ErrNACK = errors.New("pn532: NACK")
	// ErrApplication reports that the chip answered with an error frame
	// (00 00 FF 01 FF 7F 81 00): it rejected the command.
	ErrApplication = errors.New("pn532: application error frame")
)

// StatusError is a non-zero status byte returned by a command (the error
// codes of UM0701-02 section 7.1). For InDataExchange, the codes that mean
// the target stopped answering also match reader.ErrCardGone.
type StatusError struct {
	Cmd  byte // command code
	Code byte // status with the NAD and MI bits cleared
}

// Error names the command and the status.
func (e *StatusError) Error() string {
	if s, ok := statusText[e.Code]; ok {
		return fmt.Sprintf("pn532: %s: status 0x%02X (%s)", cmdName(e.Cmd), e.Code, s)
	}
	return fmt.Sprintf("pn532: %s: status 0x%02X", cmdName(e.Cmd), e.Code)
}

// Is reports whether the status means the card left the field.
func (e *StatusError) Is(target error) bool {
	if target != reader.ErrCardGone || e.Cmd != cmdInDataExchange {
		return false
	}
	switch e.Code {
	case 0x01, 0x02, 0x03, 0x0A, 0x0B, 0x13, 0x27, 0x29, 0x2B:
		return true
	}
	return false
}

var statusText = map[byte]string{
	0x01: "target did not answer",
	0x02: "CRC error",
	0x03: "parity error",
	0x04: "bit count error in anticollision",
	0x05: "framing error",
	0x06: "bit collision",
	0x07: "buffer too small",
	0x09: "RF buffer overflow",
	0x0A: "RF field not switched on in time",
	0x0B: "RF protocol error",
	0x0D: "overheating",
	0x0E: "internal buffer overflow",
	0x10: "invalid parameter",
	0x12: "command not supported by the target",
	0x13: "wrong data format from the target",
	0x14: "authentication error",
	0x23: "wrong UID check byte",
	0x25: "invalid device state",
	0x26: "operation not allowed",
	0x27: "command not acceptable in this context",
	0x29: "released by the initiator",
	0x2A: "card ID mismatch",
	0x2B: "activated card disappeared",
	0x2C: "NFCID3 mismatch",
	0x2D: "over-current",
	0x2E: "NAD missing",
}
