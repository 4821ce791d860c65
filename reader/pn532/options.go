package pn532

import (
	"log/slog"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

// Options configures a Dev. Start from DefaultOptions. Zero durations and
// an empty Name take the default values; the other fields are used as they
// are.
type Options struct {
	// Name is the reader's configured name (reader.Reader.Name).
	Name string
	// Logger receives the driver's events; nil discards them.
	Logger *slog.Logger

	// PollInterval is the period of the poll loop (health probe, ECP frame,
	// InListPassiveTarget). Phones keep express mode alive at 100–150 ms.
	PollInterval time.Duration
	// MaxRetries is the number of passive activation retries of one
	// InListPassiveTarget (RFConfiguration item 05); 0x00 tries once, 0xFF
	// forever. Keep it low so that the poll loop stays responsive.
	MaxRetries uint8
	// Timeout bounds one command exchange with the chip.
	Timeout time.Duration
	// LongTimeout bounds one APDU exchange when the context passed to
	// Transceive has no deadline.
	LongTimeout time.Duration
	// RFTimeout is how long the chip waits for a target's answer to a raw
	// frame (RFConfiguration item 02, fRetryTimeout), rounded up to the
	// chip's steps of 100 µs × 2^n. The ECP frame is never answered, so this
	// is also the pause between the ECP frame and the next poll.
	RFTimeout time.Duration

	// BitReverse makes the driver reverse the bits of every SPI byte, for
	// SPI controllers that cannot shift LSB first (the Raspberry Pi's).
	// DefaultOptions sets it (an Options built from scratch leaves it off);
	// clear it when the controller supports spi.LSBFirst.
	BitReverse bool
	// SPIFrequency is the SPI clock; the PN532 takes up to 5 MHz.
	SPIFrequency physic.Frequency
	// IRQ is the chip's IRQ line (low when the chip has a frame ready). When
	// nil the driver polls the chip's status instead.
	IRQ gpio.PinIn
	// Reset is the chip's RSTPDN line (active low). When set the driver
	// resets the chip before every (re)initialisation.
	Reset gpio.PinOut

	// ECPFrame is the enhanced contactless polling frame sent through
	// InCommunicateThru before every poll, without CRC (the chip adds it).
	// Nil sends none.
	ECPFrame []byte
}

// DefaultOptions returns the defaults: 125 ms poll period, one passive
// activation retry, 500 ms command timeout, 1 s APDU timeout, 51.2 ms RF
// timeout (the chip's own default), SPI at 1 MHz with bit reversal, no IRQ or
// reset line, no ECP frame.
func DefaultOptions() Options {
	return Options{
		Name:         "pn532",
		PollInterval: 125 * time.Millisecond,
		MaxRetries:   0x01,
		Timeout:      500 * time.Millisecond,
		LongTimeout:  time.Second,
		RFTimeout:    51200 * time.Microsecond,
		BitReverse:   true,
		SPIFrequency: physic.MegaHertz,
	}
}

// withDefaults returns a copy of o with its zero fields set to the defaults.
func (o *Options) withDefaults() Options {
	d := DefaultOptions()
	if o == nil {
		return d
	}
	r := *o
	if r.Name == "" {
		r.Name = d.Name
	}
	if r.PollInterval <= 0 {
		r.PollInterval = d.PollInterval
	}
	if r.Timeout <= 0 {
		r.Timeout = d.Timeout
	}
	if r.LongTimeout <= 0 {
		r.LongTimeout = d.LongTimeout
	}
	if r.RFTimeout <= 0 {
		r.RFTimeout = d.RFTimeout
	}
	if r.SPIFrequency <= 0 {
		r.SPIFrequency = d.SPIFrequency
	}
	r.ECPFrame = append([]byte(nil), o.ECPFrame...)
	if len(r.ECPFrame) == 0 {
		r.ECPFrame = nil
	}
	return r
}

// rfTimeoutCode converts d to the chip's timeout code: code n is
// 100 µs × 2^(n-1), from 0x01 (100 µs) to 0x10 (3.28 s).
func rfTimeoutCode(d time.Duration) byte {
	code := byte(0x01)
	for step := 100 * time.Microsecond; step < d && code < 0x10; step *= 2 {
		code++
	}
	return code
}
