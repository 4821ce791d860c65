package pcsc

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/dkvehicled/dkvehicled/reader"
)

// This file builds and parses the ACR122U's pseudo-APDUs (class FF), which
// the reader answers itself instead of passing them to the card. They follow
// ACS's "ACR122U Application Programming Interface" (v2.04) and the PN532
// user manual. NOT YET VERIFIED ON HARDWARE: the tests check them against
// exchanges written from those documents, not recorded from a reader.

// escapeControlCode is SCardControl's code for the CCID escape on pcsc-lite:
// SCARD_CTL_CODE(3500). libccid accepts it only when ifdDriverOptions has
// bit 0x0001 set in its Info.plist.
const escapeControlCode = 0x42000000 + 3500

// firmwareAPDU asks the reader for its firmware version ("ACR122U207").
var firmwareAPDU = []byte{0xFF, 0x00, 0x48, 0x00, 0x00}

// isACR122U recognises an ACR122U by its PC/SC reader name
// ("ACS ACR122U PICC Interface 00 00").
func isACR122U(name string) bool { return strings.Contains(name, "ACR122") }

// errRefused is the ACR122U's answer 63 00: "operation failed".
var errRefused = errors.New("pcsc: ACR122U refused the command (63 00)")

var (
	swOK      = []byte{0x90, 0x00}
	swRefused = []byte{0x63, 0x00}
)

// parseFirmware reads the answer to firmwareAPDU: the version in ASCII,
// without a status word (some firmware appends 90 00 anyway).
func parseFirmware(rsp []byte) (string, error) {
	if bytes.Equal(rsp, swRefused) {
		return "", errRefused
	}
	text, _ := bytes.CutSuffix(rsp, swOK)
	s := strings.TrimSpace(string(text))
	if s == "" {
		return "", errors.New("pcsc: empty firmware version")
	}
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7E {
			return "", fmt.Errorf("pcsc: firmware version is not text (%d bytes)", len(rsp))
		}
	}
	return s, nil
}

// ledPattern is the argument of the LED and buzzer pseudo-APDU
// FF 00 40 P2 04 T1 T2 N M.
//
// P2 bits: 0 final red on, 1 final green on, 2 update red, 3 update green,
// 4 red on in T1, 5 green on in T1, 6 blink red, 7 blink green.
// T1 and T2 are the two phases of a blink in units of 100 ms, N the number of
// blinks, M links the buzzer: 00 silent, 01 during T1, 02 during T2, 03 both.
type ledPattern struct{ p2, t1, t2, n, m byte }

// patterns give each signal its own look and sound. All end on the
// ACR122U's idle look (red on, green off) and last at most 0.8 s, since the
// reader may hold its answer until the pattern has played.
var patterns = map[reader.Signal]ledPattern{
	// one green blink and a short beep: 0.2 s
	reader.SignalSeen: {p2: 0xAD, t1: 1, t2: 1, n: 1, m: 0x01},
	// green for half a second with one long beep: 0.6 s
	reader.SignalAllowed: {p2: 0xAD, t1: 5, t2: 1, n: 1, m: 0x01},
	// three red blinks, three short beeps: 0.6 s
	reader.SignalDenied: {p2: 0x5D, t1: 1, t2: 1, n: 3, m: 0x01},
	// red and green (amber) blink twice with two beeps: 0.8 s
	reader.SignalError: {p2: 0xFD, t1: 2, t2: 2, n: 2, m: 0x01},
}

// feedbackAPDU builds the LED and buzzer pseudo-APDU for s.
func feedbackAPDU(s reader.Signal) ([]byte, error) {
	p, ok := patterns[s]
	if !ok {
		return nil, fmt.Errorf("pcsc: no LED pattern for signal %v", s)
	}
	return []byte{0xFF, 0x00, 0x40, p.p2, 0x04, p.t1, p.t2, p.n, p.m}, nil
}

// parseFeedback reads the answer to feedbackAPDU: 90 and the LED state.
func parseFeedback(rsp []byte) error {
	switch {
	case bytes.Equal(rsp, swRefused):
		return errRefused
	case len(rsp) != 2 || rsp[0] != 0x90:
		return fmt.Errorf("pcsc: unexpected answer to the LED command (%d bytes)", len(rsp))
	}
	return nil
}

// PN532 commands and response codes used through the ACR122U.
const (
	pn532Host                   = 0xD4 // frame direction host to PN532
	pn532Reply                  = 0xD5 // frame direction PN532 to host
	pn532InCommunicateThru      = 0x42
	pn532StatusTimeout     byte = 0x01 // no answer from a target
)

// directTransmit wraps a PN532 command (D4 ...) in the ACR122U's direct
// transmit pseudo-APDU FF 00 00 00 Lc.
func directTransmit(pn532 []byte) ([]byte, error) {
	if len(pn532) == 0 || len(pn532) > 255 {
		return nil, fmt.Errorf("pcsc: PN532 command of %d bytes", len(pn532))
	}
	return append([]byte{0xFF, 0x00, 0x00, 0x00, byte(len(pn532))}, pn532...), nil
}

// ecpCommand sends an ECP frame with InCommunicateThru: the PN532 adds the
// CRC and transmits the frame as is.
func ecpCommand(frame []byte) ([]byte, error) {
	return directTransmit(append([]byte{pn532Host, pn532InCommunicateThru}, frame...))
}

// parseECP reads the answer to ecpCommand: D5 43, the PN532 status, any
// data, then 90 00. Phones do not answer polling frames, so the status
// "timeout" is success here.
func parseECP(rsp []byte) error {
	if bytes.Equal(rsp, swRefused) {
		return errRefused
	}
	body, ok := bytes.CutSuffix(rsp, swOK)
	if !ok || len(body) < 3 || body[0] != pn532Reply || body[1] != pn532InCommunicateThru+1 {
		return fmt.Errorf("pcsc: unexpected answer to InCommunicateThru (%d bytes)", len(rsp))
	}
	if st := body[2] & 0x3F; st != 0 && st != pn532StatusTimeout {
		return fmt.Errorf("pcsc: PN532 InCommunicateThru failed with status %#02x", st)
	}
	return nil
}
