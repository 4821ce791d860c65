// Package pcsc is the PC/SC reader backend: NFC readers driven by pcscd
// (pcsc-lite) through github.com/ebfe/scard, such as the ACS ACR122U, and
// the virtual readers of vsmartcard's vpcd used in CI.
//
// PC/SC needs cgo and libpcsclite, so the backend is built only with the
// build tag pcsc (go build -tags pcsc). Without it the package still
// compiles, and NewManager returns ErrNotBuilt.
//
// A Manager connects to pcscd and opens one reader.Reader per configured
// reader (the door and the dashboard reader at once). Options.Reader
// selects the PC/SC reader by exact name or glob (see Match); two Readers of
// one Manager never get the same PC/SC reader. Each Reader keeps its own
// PC/SC contexts, because pcsc-lite serialises the calls on one context: a
// wait for a card in one reader never delays an exchange in another, nor
// in the same reader.
//
// When the reader is unplugged or pcscd restarts, the Reader reports itself
// unhealthy (Health().OK false, Errors counted, Detail saying why), looks
// for pcscd and the reader again every Options.RetryInterval inside
// WaitCard, and counts a recovery when it is back.
//
// On an ACR122U (recognised by "ACR122" in its name) the Reader also reads
// the firmware version, drives the LED and buzzer (reader.Feedbacker,
// Options.Feedback) and can send an enhanced contactless polling frame
// between card polls (Options.ECPFrame). Other readers get plain PC/SC and
// never see these pseudo-APDUs. These ACR122U paths are NOT YET VERIFIED ON
// HARDWARE. The firmware, ECP and LED-without-a-card need libccid's CCID
// escape, which must be enabled in its Info.plist: see docs/pcsc.md.
package pcsc
