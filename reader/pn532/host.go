package pn532

import (
	"errors"
	"fmt"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/host/v3"
)

// OpenSPI initialises periph's host drivers, opens the SPI port by name
// (e.g. "/dev/spidev0.0" or "SPI0.0"; "" for the first one) and returns a
// PN532 on it. Close closes the port.
func OpenSPI(name string, opts *Options) (*Dev, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("pn532: periph host: %w", err)
	}
	p, err := spireg.Open(name)
	if err != nil {
		return nil, fmt.Errorf("pn532: open SPI %q: %w", name, err)
	}
	d, err := NewSPI(p, opts)
	if err != nil {
		return nil, errors.Join(err, p.Close())
	}
	d.closer = p
	return d, nil
}

// OpenI2C initialises periph's host drivers, opens the I2C bus by name
// (e.g. "/dev/i2c-1" or "1"; "" for the first one) and returns a PN532 on
// it. Close closes the bus.
func OpenI2C(name string, opts *Options) (*Dev, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("pn532: periph host: %w", err)
	}
	b, err := i2creg.Open(name)
	if err != nil {
		return nil, fmt.Errorf("pn532: open I2C %q: %w", name, err)
	}
	d, err := NewI2C(b, opts)
	if err != nil {
		return nil, errors.Join(err, b.Close())
	}
	d.closer = b
	return d, nil
}

// LookupPin initialises periph's host drivers and returns the GPIO pin with
// that name (e.g. "GPIO5"), for Options.IRQ and Options.Reset.
func LookupPin(name string) (gpio.PinIO, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("pn532: periph host: %w", err)
	}
	p := gpioreg.ByName(name)
	if p == nil {
		return nil, fmt.Errorf("pn532: no GPIO pin %q", name)
	}
	return p, nil
}
