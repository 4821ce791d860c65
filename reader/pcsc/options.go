package pcsc

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults for the zero values of Options.
const (
	DefaultRetryInterval = 300 * time.Millisecond
	DefaultECPInterval   = 100 * time.Millisecond
)

// maxECPFrame is the longest ECP frame that fits the ACR122U's direct
// transmit pseudo-APDU (Lc counts D4 42 and the frame).
const maxECPFrame = 255 - 2

// Options configure one reader. The daemon's TOML configuration maps onto
// them.
type Options struct {
	// Name is what the daemon calls the reader ("door", "dashboard"): Name()
	// returns it and logs show it under the key "reader". Empty means Reader.
	Name string
	// Reader selects the PC/SC reader: an exact reader name as pcsc_scan
	// shows it ("ACS ACR122U PICC Interface 00 00") or a glob pattern
	// ("ACS ACR122U*", "Virtual PCD 00 0?"); see Match.
	Reader string
	// Feedback drives an ACR122U's LED and buzzer from Feedback. Other
	// readers ignore it.
	Feedback bool
	// ECPFrame is the enhanced contactless polling frame, without its CRC,
	// that an ACR122U sends between card polls. Nil (the default) sends none.
	// Other readers cannot send it.
	ECPFrame []byte
	// ECPInterval is the period of ECP frames (DefaultECPInterval if zero).
	ECPInterval time.Duration
	// RetryInterval is how often an unavailable reader is looked for again
	// (DefaultRetryInterval if zero).
	RetryInterval time.Duration
	// Logger receives the reader's events; nil discards them. APDU contents
	// are never logged.
	Logger *slog.Logger
}

// withDefaults checks o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Reader == "" {
		return o, errors.New("pcsc: no reader name or pattern configured")
	}
	if o.Name == "" {
		o.Name = o.Reader
	}
	if o.ECPFrame != nil && (len(o.ECPFrame) == 0 || len(o.ECPFrame) > maxECPFrame) {
		return o, fmt.Errorf("pcsc: ECP frame of %d bytes, want 1 to %d", len(o.ECPFrame), maxECPFrame)
	}
	if o.ECPInterval < 0 || o.RetryInterval < 0 {
		return o, errors.New("pcsc: negative interval")
	}
	if o.ECPInterval == 0 {
		o.ECPInterval = DefaultECPInterval
	}
	if o.RetryInterval == 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.ECPFrame = append([]byte(nil), o.ECPFrame...)
	return o, nil
}
