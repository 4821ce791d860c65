package pcsc

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dkvehicled/dkvehicled/reader"
)

func TestErrorIsReadableAndClassified(t *testing.T) {
	cases := []struct {
		code  uint32
		words string
		class error
	}{
		{0x80100069, "card removed (SCARD_W_REMOVED_CARD)", reader.ErrCardGone},
		{0x80100016, "SCARD_E_NOT_TRANSACTED", reader.ErrCardGone},
		{0x8010001D, "pcscd is not running (SCARD_E_NO_SERVICE)", reader.ErrUnavailable},
		{0x8010001E, "SCARD_E_SERVICE_STOPPED", reader.ErrUnavailable},
		{0x80100009, "SCARD_E_UNKNOWN_READER", reader.ErrUnavailable},
		{0x80100017, "SCARD_E_READER_UNAVAILABLE", reader.ErrUnavailable},
		{0x8010000B, "another program holds the reader", nil},
		{0x80100099, "unknown PC/SC error 0x80100099", nil},
	}
	for _, c := range cases {
		err := fmt.Errorf("tap: %w", &Error{Op: "SCardTransmit", Code: c.code})
		msg := err.Error()
		if !strings.Contains(msg, "SCardTransmit") || !strings.Contains(msg, c.words) {
			t.Errorf("%#x: %q", c.code, msg)
		}
		for _, sentinel := range []error{reader.ErrCardGone, reader.ErrUnavailable} {
			if errors.Is(err, sentinel) != (sentinel == c.class) {
				t.Errorf("%#x: errors.Is(%v) = %v", c.code, sentinel, !(sentinel == c.class))
			}
		}
	}
}

func TestNamedCodesMatchTable(t *testing.T) {
	for c, name := range map[uint32]string{
		codeCancelled:     "SCARD_E_CANCELLED",
		codeUnknownReader: "SCARD_E_UNKNOWN_READER",
		codeTimeout:       "SCARD_E_TIMEOUT",
		codeNoReaders:     "SCARD_E_NO_READERS_AVAILABLE",
	} {
		if codes[c].name != name {
			t.Errorf("%#x is %q in the table, want %q", c, codes[c].name, name)
		}
	}
	if !hasCode(fmt.Errorf("x: %w", &Error{Code: codeTimeout}), codeTimeout) || hasCode(errors.New("x"), codeTimeout) {
		t.Error("hasCode")
	}
}
