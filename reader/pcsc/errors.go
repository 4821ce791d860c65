package pcsc

import (
	"errors"
	"fmt"

	"github.com/dkvehicled/dkvehicled/reader"
)

// ErrNotBuilt is what every constructor returns in a build without the pcsc
// build tag.
var ErrNotBuilt = errors.New("dkvehicled was built without PC/SC support; rebuild with -tags pcsc")

// ErrClosed reports use of a Reader or Card after Close.
var ErrClosed = errors.New("pcsc: closed")

// Error is a PC/SC call that failed: the function and the SCARD_E_/SCARD_W_
// code it returned. It unwraps to reader.ErrCardGone when the code means the
// card left, and to reader.ErrUnavailable when it means the reader or pcscd
// went away.
type Error struct {
	Op   string // the PC/SC function, e.g. "SCardTransmit"
	Code uint32 // the PC/SC return code
}

// Error names the call, says what the code means, and shows the code.
func (e *Error) Error() string {
	if c, ok := codes[e.Code]; ok {
		return fmt.Sprintf("pcsc: %s: %s (%s)", e.Op, c.text, c.name)
	}
	return fmt.Sprintf("pcsc: %s: unknown PC/SC error 0x%08X", e.Op, e.Code)
}

// Unwrap returns reader.ErrCardGone, reader.ErrUnavailable or nil.
func (e *Error) Unwrap() error { return codes[e.Code].class }

// PC/SC return codes the package acts on.
const (
	codeCancelled     uint32 = 0x80100002 // SCARD_E_CANCELLED
	codeUnknownReader uint32 = 0x80100009 // SCARD_E_UNKNOWN_READER
	codeTimeout       uint32 = 0x8010000A // SCARD_E_TIMEOUT
	codeNoReaders     uint32 = 0x8010002E // SCARD_E_NO_READERS_AVAILABLE
)

// code describes one PC/SC return code.
type code struct {
	name  string
	text  string
	class error // reader.ErrCardGone, reader.ErrUnavailable or nil
}

// codes holds the return codes a reader of NFC cards meets in practice, in
// words an operator understands (after pcsc-lite's pcsclite.h).
var codes = map[uint32]code{
	0x80100001: {"SCARD_F_INTERNAL_ERROR", "internal consistency check failed", nil},
	0x80100002: {"SCARD_E_CANCELLED", "cancelled", nil},
	0x80100003: {"SCARD_E_INVALID_HANDLE", "invalid handle (pcscd restarted?)", reader.ErrUnavailable},
	0x80100004: {"SCARD_E_INVALID_PARAMETER", "invalid parameter", nil},
	0x80100006: {"SCARD_E_NO_MEMORY", "not enough memory", nil},
	0x80100008: {"SCARD_E_INSUFFICIENT_BUFFER", "buffer too small for the returned data", nil},
	0x80100009: {"SCARD_E_UNKNOWN_READER", "reader not known to pcscd (unplugged?)", reader.ErrUnavailable},
	0x8010000A: {"SCARD_E_TIMEOUT", "timed out", nil},
	0x8010000B: {"SCARD_E_SHARING_VIOLATION", "sharing violation: another program holds the reader or card exclusively", nil},
	0x8010000C: {"SCARD_E_NO_SMARTCARD", "no card in the reader", reader.ErrCardGone},
	0x8010000F: {"SCARD_E_PROTO_MISMATCH", "card protocol not supported", nil},
	0x80100010: {"SCARD_E_NOT_READY", "reader or card not ready", nil},
	0x80100011: {"SCARD_E_INVALID_VALUE", "invalid parameter value", nil},
	0x80100012: {"SCARD_E_SYSTEM_CANCELLED", "cancelled by the system", nil},
	0x80100013: {"SCARD_F_COMM_ERROR", "lost the connection to pcscd", reader.ErrUnavailable},
	0x80100014: {"SCARD_F_UNKNOWN_ERROR", "unknown internal error", nil},
	0x80100016: {"SCARD_E_NOT_TRANSACTED", "exchange with the card failed", reader.ErrCardGone},
	0x80100017: {"SCARD_E_READER_UNAVAILABLE", "reader unavailable (unplugged?)", reader.ErrUnavailable},
	0x80100018: {"SCARD_E_SHUTDOWN", "pcscd is shutting down", reader.ErrUnavailable},
	0x8010001C: {"SCARD_E_CARD_UNSUPPORTED", "card not supported", nil},
	0x8010001D: {"SCARD_E_NO_SERVICE", "pcscd is not running", reader.ErrUnavailable},
	0x8010001E: {"SCARD_E_SERVICE_STOPPED", "pcscd stopped", reader.ErrUnavailable},
	0x8010001F: {"SCARD_E_UNSUPPORTED_FEATURE", "not supported by the reader or its driver", nil},
	0x8010002E: {"SCARD_E_NO_READERS_AVAILABLE", "no reader connected", reader.ErrUnavailable},
	0x8010002F: {"SCARD_E_COMM_DATA_LOST", "communication with the card lost", reader.ErrCardGone},
	0x80100031: {"SCARD_E_SERVER_TOO_BUSY", "pcscd too busy", nil},
	0x80100065: {"SCARD_W_UNSUPPORTED_CARD", "card not supported (ATR conflict)", nil},
	0x80100066: {"SCARD_W_UNRESPONSIVE_CARD", "card not responding", reader.ErrCardGone},
	0x80100067: {"SCARD_W_UNPOWERED_CARD", "card not powered", reader.ErrCardGone},
	0x80100068: {"SCARD_W_RESET_CARD", "card was reset", reader.ErrCardGone},
	0x80100069: {"SCARD_W_REMOVED_CARD", "card removed", reader.ErrCardGone},
	0x8010006A: {"SCARD_W_SECURITY_VIOLATION", "access denied", nil},
}

// hasCode reports whether err is a PC/SC error with the given code.
func hasCode(err error, c uint32) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == c
}
