package pn532sim

import (
	"fmt"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// i2cAddr is the PN532's I2C address.
const i2cAddr = 0x24

// I2C returns the chip as an I2C bus with the chip at address 0x24: a write
// is one frame; every read starts with the ready byte, and a read longer
// than that takes the next frame.
func (c *Chip) I2C() i2c.Bus { return &i2cBus{c} }

type i2cBus struct{ c *Chip }

func (b *i2cBus) String() string                    { return "pn532sim-i2c" }
func (b *i2cBus) SetSpeed(f physic.Frequency) error { return nil }

func (b *i2cBus) Tx(addr uint16, w, r []byte) error {
	if addr != i2cAddr {
		return fmt.Errorf("pn532sim: no device at I2C address 0x%02X", addr)
	}
	c := b.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(w) > 0 {
		k, data, _ := parseFrame(w)
		c.receive(k, data)
	}
	if len(r) > 0 {
		clear(r)
		if c.ready() {
			r[0] = 0x01
			if len(r) > 1 {
				copy(r[1:], c.pop(len(r)-1))
			}
		}
	}
	return nil
}
