// Package reader defines what the daemon needs from an NFC reader backend:
// wait for a card, exchange APDUs with it, notice when it leaves, and report
// the reader's health. Backends live in sub-packages: sim (in-process, for
// tests and the demo), pcsc (PC/SC through pcsc-lite, build tag pcsc) and
// pn532 (a PN532 on SPI, I2C or UART).
package reader

import (
	"context"
	"errors"
	"time"

	"github.com/dkvehicled/dkvehicled/apdu"
)

// ErrCardGone reports that the card left the field during an exchange.
var ErrCardGone = errors.New("reader: card removed")

// ErrUnavailable reports that the reader itself is not usable right now
// (unplugged, its service restarted, its chip not answering).
var ErrUnavailable = errors.New("reader: unavailable")

// Reader is one NFC reader. WaitCard is called from a single goroutine; Health
// may be called concurrently with it.
type Reader interface {
	// Name is the configured name of the reader.
	Name() string
	// WaitCard blocks until an ISO 14443-4 card is in the field or ctx ends.
	// Backends recover from their own failures inside WaitCard (reconnect,
	// re-initialise with backoff) and keep Health up to date meanwhile; they
	// return an error only when ctx ends or the failure is permanent.
	WaitCard(ctx context.Context) (Card, error)
	// Health reports the reader's state for status and metrics.
	Health() Health
	// Close releases the reader.
	Close() error
}

// Card is one card present in a reader's field.
type Card interface {
	apdu.Transceiver
	// WaitRemoved blocks until the card has left the field or ctx ends.
	WaitRemoved(ctx context.Context) error
	// Close releases the card (disconnects, powers the field down if needed).
	Close() error
}

// Health is a reader's state as status and metrics show it.
type Health struct {
	// OK is false while the reader is unavailable.
	OK bool `json:"ok"`
	// Detail says what the backend is doing or what went wrong.
	Detail string `json:"detail,omitempty"`
	// Firmware is the reader's firmware version, when the backend knows it.
	Firmware string `json:"firmware,omitempty"`
	// ECP says whether the backend can send enhanced contactless polling frames.
	ECP bool `json:"ecp"`
	// Since is when OK last changed.
	Since time.Time `json:"since"`
	// Errors counts reader errors since start.
	Errors uint64 `json:"errors"`
	// Recoveries counts successful re-initialisations after errors.
	Recoveries uint64 `json:"recoveries"`
}

// Signal is the feedback a reader with its own LED or buzzer can give.
type Signal int

// Feedback signals, one per kind of outcome.
const (
	SignalSeen    Signal = iota // a card was seen
	SignalAllowed               // the action was allowed
	SignalDenied                // the action was denied
	SignalError                 // the transaction failed
)

// String names the signal.
func (s Signal) String() string {
	switch s {
	case SignalSeen:
		return "seen"
	case SignalAllowed:
		return "allowed"
	case SignalDenied:
		return "denied"
	case SignalError:
		return "error"
	}
	return "unknown"
}

// Feedbacker is implemented by readers with their own LED or buzzer
// (the ACR122U). The daemon calls it after each transaction when present.
type Feedbacker interface {
	Feedback(ctx context.Context, s Signal) error
}
