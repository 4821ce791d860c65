package pcsc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/dkvehicled/dkvehicled/reader"
)

// The exchanges below are written by hand from ACS's ACR122U API manual and
// the PN532 user manual; none was recorded from a reader yet.

func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func TestEscapeControlCode(t *testing.T) {
	if escapeControlCode != 0x42000DAC { // SCARD_CTL_CODE(3500) on pcsc-lite
		t.Fatalf("%#x", escapeControlCode)
	}
}

func TestIsACR122U(t *testing.T) {
	for name, want := range map[string]bool{
		"ACS ACR122U PICC Interface 00 00":   true,
		"ACS ACR122U 00 00":                  true,
		"ACS ACR1252 Dual Reader PICC 00 01": false,
		"Virtual PCD 00 00":                  false,
	} {
		if isACR122U(name) != want {
			t.Errorf("%q: %v", name, !want)
		}
	}
}

func TestFeedbackAPDUs(t *testing.T) {
	want := map[reader.Signal]string{
		reader.SignalSeen:    "FF 00 40 AD 04 01 01 01 01",
		reader.SignalAllowed: "FF 00 40 AD 04 05 01 01 01",
		reader.SignalDenied:  "FF 00 40 5D 04 01 01 03 01",
		reader.SignalError:   "FF 00 40 FD 04 02 02 02 01",
	}
	for s, w := range want {
		got, err := feedbackAPDU(s)
		if err != nil || !bytes.Equal(got, hx(w)) {
			t.Errorf("%v: % X, %v; want %s", s, got, err, w)
		}
		p2, t1, t2, n := got[3], got[5], got[6], got[7]
		if p2&0x0D != 0x0D || p2&0x02 != 0 {
			t.Errorf("%v: P2 %02X does not end on red on, green off", s, p2)
		}
		if ms := (int(t1) + int(t2)) * int(n) * 100; ms > 800 {
			t.Errorf("%v: pattern lasts %d ms", s, ms)
		}
	}
	allowed, denied := patterns[reader.SignalAllowed].p2, patterns[reader.SignalDenied].p2
	if allowed&0x80 == 0 || allowed&0x40 != 0 {
		t.Errorf("allowed does not blink green only: %02X", allowed)
	}
	if denied&0x40 == 0 || denied&0x80 != 0 {
		t.Errorf("denied does not blink red only: %02X", denied)
	}
	if _, err := feedbackAPDU(reader.Signal(42)); err == nil {
		t.Error("unknown signal accepted")
	}
}

func TestParseFeedback(t *testing.T) {
	for _, ok := range []string{"90 01", "90 00", "90 03"} {
		if err := parseFeedback(hx(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if err := parseFeedback(hx("63 00")); !errors.Is(err, errRefused) {
		t.Errorf("63 00: %v", err)
	}
	for _, bad := range []string{"", "6A 81", "90", "90 00 00"} {
		if err := parseFeedback(hx(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseFirmware(t *testing.T) {
	for rsp, want := range map[string]string{
		"41 43 52 31 32 32 55 32 30 37":       "ACR122U207",
		"41 43 52 31 32 32 55 32 30 31 90 00": "ACR122U201",
	} {
		got, err := parseFirmware(hx(rsp))
		if err != nil || got != want {
			t.Errorf("%s: %q, %v", rsp, got, err)
		}
	}
	if _, err := parseFirmware(hx("63 00")); !errors.Is(err, errRefused) {
		t.Errorf("63 00: %v", err)
	}
	for _, bad := range []string{"", "90 00", "D5 03 32 01 06 07 90 00"} {
		if got, err := parseFirmware(hx(bad)); err == nil {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
}

func TestECPCommand(t *testing.T) {
	// a version 2 access frame without reader id; the TCI is a test value
	frame := hx("6A 02 C3 02 01 01 00 00")
	got, err := ecpCommand(frame)
	if err != nil || !bytes.Equal(got, hx("FF 00 00 00 0A D4 42 6A 02 C3 02 01 01 00 00")) {
		t.Fatalf("% X, %v", got, err)
	}
	if _, err := ecpCommand(make([]byte, maxECPFrame)); err != nil {
		t.Errorf("longest frame: %v", err)
	}
	if _, err := ecpCommand(make([]byte, maxECPFrame+1)); err == nil {
		t.Error("frame too long for Lc accepted")
	}
	if _, err := directTransmit(nil); err == nil {
		t.Error("empty PN532 command accepted")
	}
}

func TestParseECP(t *testing.T) {
	for _, ok := range []string{
		"D5 43 01 90 00", // timeout: no phone answers a polling frame
		"D5 43 00 90 00",
		"D5 43 00 AA BB 90 00",
	} {
		if err := parseECP(hx(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if err := parseECP(hx("63 00")); !errors.Is(err, errRefused) {
		t.Errorf("63 00: %v", err)
	}
	for _, bad := range []string{
		"D5 43 02 90 00", // CRC error
		"D5 43 01",       // no status word
		"D5 41 00 90 00", // answer to another command
		"D5 43 90 00",
		"",
	} {
		if err := parseECP(hx(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
