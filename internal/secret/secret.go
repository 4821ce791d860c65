// Package secret holds key material in a type that refuses to be printed.
//
// Private keys, Kpersistent, session keys, immobilizer tokens and pairing
// verifiers travel as Bytes. Formatting, logging or JSON-encoding a Bytes value
// yields a fixed placeholder, so a secret that slips into a log line, an error
// string or a control-socket reply shows up as "[redacted]" instead of its bytes.
package secret

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
)

// Redacted is what every rendering of a secret prints.
const Redacted = "[redacted]"

// Bytes is secret key material. Use Expose to reach the bytes on purpose.
type Bytes []byte

// Expose returns the underlying bytes. Callers must not log them.
func (b Bytes) Expose() []byte { return b }

// Equal compares two secrets in constant time (for equal lengths).
func (b Bytes) Equal(o Bytes) bool {
	return len(b) == len(o) && subtle.ConstantTimeCompare(b, o) == 1
}

// Clone returns an independent copy (nil stays nil).
func (b Bytes) Clone() Bytes {
	if b == nil {
		return nil
	}
	return append(Bytes(nil), b...)
}

// String implements fmt.Stringer.
func (b Bytes) String() string { return Redacted }

// GoString implements fmt.GoStringer, used by %#v.
func (b Bytes) GoString() string { return Redacted }

// Format implements fmt.Formatter so that every verb (%x and %v included) redacts.
func (b Bytes) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (b Bytes) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalText implements encoding.TextMarshaler (and so JSON encoding).
func (b Bytes) MarshalText() ([]byte, error) { return []byte(Redacted), nil }
