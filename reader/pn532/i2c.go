package pn532

import (
	"fmt"

	"periph.io/x/conn/v3/i2c"
)

// I2CAddr is the PN532's 7-bit I2C address.
const I2CAddr = 0x24

// NewI2C returns a PN532 on an I2C bus at address 0x24. A nil opts means
// DefaultOptions().
func NewI2C(b i2c.Bus, opts *Options) (*Dev, error) {
	o := opts.withDefaults()
	return newDev(&polled{bus: &i2cBus{b: b}, irq: o.IRQ}, o)
}

// i2cBus is the PN532's I2C framing: every read starts with the ready byte.
type i2cBus struct {
	b i2c.Bus
}

func (c *i2cBus) write(b []byte) error {
	if err := c.b.Tx(I2CAddr, b, nil); err != nil {
		return fmt.Errorf("i2c: %w", err)
	}
	return nil
}

func (c *i2cBus) ready() (bool, error) {
	var r [1]byte
	if err := c.b.Tx(I2CAddr, nil, r[:]); err != nil {
		return false, fmt.Errorf("i2c: %w", err)
	}
	return r[0]&0x01 != 0, nil
}

func (c *i2cBus) read(n int) ([]byte, error) {
	r := make([]byte, n+1)
	if err := c.b.Tx(I2CAddr, nil, r); err != nil {
		return nil, fmt.Errorf("i2c: %w", err)
	}
	if r[0]&0x01 == 0 {
		return nil, fmt.Errorf("%w: chip not ready", ErrFrame)
	}
	return r[1:], nil
}
