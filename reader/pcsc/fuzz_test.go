package pcsc

import (
	"bytes"
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/dkvehicled/dkvehicled/apdu"
)

// The ACR122U's answers to its pseudo-APDUs come from the reader's
// firmware (or from whatever claims to be an ACR122U on the USB bus): the
// parsers below must hold their contract for any bytes.

// FuzzParseFirmware checks that an accepted firmware version is printable,
// trimmed text taken from the answer, that it parses again to itself (with
// or without the 90 00 some firmware appends), and that only 63 00 counts as
// a refusal.
func FuzzParseFirmware(f *testing.F) {
	for _, s := range []string{
		"41 43 52 31 32 32 55 32 30 37",
		"41 43 52 31 32 32 55 32 30 31 90 00",
		"20 41 43 52 31 32 32 55 32 30 37 0A 90 00",
		"63 00", "90 00", "", "90 00 90 00", "41 00 42",
		"D5 03 32 01 06 07 90 00",
	} {
		f.Add(hx(s))
	}
	f.Fuzz(func(t *testing.T, rsp []byte) {
		s, err := parseFirmware(rsp)
		if refused := bytes.Equal(rsp, swRefused); refused != errors.Is(err, errRefused) {
			t.Fatalf("% X: refused %v, err %v", rsp, refused, err)
		}
		if err != nil {
			if s != "" {
				t.Fatalf("% X: error %v with version %q", rsp, err, s)
			}
			return
		}
		if s == "" || s != strings.TrimSpace(s) || !bytes.Contains(rsp, []byte(s)) {
			t.Fatalf("% X: version %q is not trimmed text of the answer", rsp, s)
		}
		for _, c := range []byte(s) {
			if c < 0x20 || c > 0x7E {
				t.Fatalf("% X: version %q is not printable", rsp, s)
			}
		}
		for _, again := range [][]byte{[]byte(s), append([]byte(s), swOK...)} {
			if s2, err := parseFirmware(again); err != nil || s2 != s {
				t.Fatalf("%q parses again as %q, %v", again, s2, err)
			}
		}
	})
}

// FuzzParseFeedbackAndECP checks the answers to the LED pseudo-APDU and to
// the ECP InCommunicateThru against the documents' layout, and that the
// ECP command built for a frame is a well-formed APDU carrying the frame.
func FuzzParseFeedbackAndECP(f *testing.F) {
	for _, s := range []string{
		"90 00", "90 03", "63 00", "6A 81", "90", "90 00 00",
		"D5 43 01 90 00", "D5 43 00 90 00", "D5 43 00 AA BB 90 00", "D5 43 41 90 00",
		"D5 43 02 90 00", "D5 43 01", "D5 41 00 90 00", "D5 43 90 00",
		"6A 02 C3 02 01 01 00 00",
	} {
		f.Add(hx(s))
	}
	f.Fuzz(func(t *testing.T, rsp []byte) {
		refused := bytes.Equal(rsp, swRefused)

		err := parseFeedback(rsp)
		if want := len(rsp) == 2 && rsp[0] == 0x90; (err == nil) != want {
			t.Fatalf("feedback % X: err %v", rsp, err)
		}
		if refused != errors.Is(err, errRefused) {
			t.Fatalf("feedback % X: refused %v, err %v", rsp, refused, err)
		}

		err = parseECP(rsp)
		if refused != errors.Is(err, errRefused) {
			t.Fatalf("ECP % X: refused %v, err %v", rsp, refused, err)
		}
		if err == nil {
			body, ok := bytes.CutSuffix(rsp, swOK)
			if !ok || len(body) < 3 || body[0] != pn532Reply || body[1] != pn532InCommunicateThru+1 ||
				(body[2]&0x3F != 0 && body[2]&0x3F != pn532StatusTimeout) {
				t.Fatalf("ECP % X accepted", rsp)
			}
		}

		// The same bytes as an ECP frame to send.
		cmd, err := ecpCommand(rsp)
		if fits := len(rsp) <= maxECPFrame; fits != (err == nil) {
			t.Fatalf("ECP frame of %d bytes: err %v", len(rsp), err)
		}
		if err != nil {
			return
		}
		c, err := apdu.ParseCommand(cmd)
		if err != nil || c.CLA != 0xFF || c.INS != 0x00 || c.P1 != 0 || c.P2 != 0 || c.Ne != 0 ||
			!bytes.Equal(c.Data, append([]byte{pn532Host, pn532InCommunicateThru}, rsp...)) {
			t.Fatalf("ECP command % X for frame % X parses as %v, %v", cmd, rsp, c, err)
		}
	})
}

// FuzzMatch checks reader-name matching: a name always matches itself, a
// glob match is a match, a match is either the name itself or a valid glob
// match, and pick prefers the exact name and never returns a reader that
// does not match or is taken.
func FuzzMatch(f *testing.F) {
	for _, c := range [][2]string{
		{"ACS ACR122U PICC Interface 00 00", "ACS ACR122U PICC Interface 00 00"},
		{"ACS ACR122U*", "ACS ACR122U PICC Interface 00 00"},
		{"Virtual PCD 00 0?", "Virtual PCD 00 01"},
		{"SCM SCR 335 [CCID Interface] 00 00", "SCM SCR 335 [CCID Interface] 00 00"},
		{`SCM SCR 335 \[CCID Interface\] 00 *`, "SCM SCR 335 [CCID Interface] 00 00"},
		{"Reader [1", "Reader 1"},
		{"[^a-z]*", "Reader"},
		{"*/*", "a/b"},
		{"", ""},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if !Match(name, name) {
			t.Fatalf("%q does not match itself", name)
		}
		ok, err := path.Match(pattern, name)
		got := Match(pattern, name)
		if err == nil && ok && !got {
			t.Fatalf("glob %q matches %q but Match says no", pattern, name)
		}
		if got && pattern != name && (err != nil || !ok) {
			t.Fatalf("Match(%q, %q) without an exact name or a glob match", pattern, name)
		}

		names := []string{name, pattern + "0", pattern, name + " 01"}
		none := func(string) bool { return false }
		// The exact name comes before any glob match, wherever it is.
		if n, found := pick(pattern, names, none); !found || n != pattern {
			t.Fatalf("pick(%q, %q) = %q, %v: not the exact name", pattern, names, n, found)
		}
		// With the exact name taken, only other matching names qualify.
		taken := func(s string) bool { return s == pattern }
		if n, found := pick(pattern, names, taken); found && (n == pattern || !Match(pattern, n)) {
			t.Fatalf("pick(%q, %q) with the exact name taken = %q", pattern, names, n)
		}
		if _, found := pick(pattern, names, func(string) bool { return true }); found {
			t.Fatalf("pick(%q) found a reader when all are taken", pattern)
		}
	})
}
