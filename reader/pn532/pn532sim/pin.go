package pn532sim

import (
	"errors"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

// ResetPin returns the chip's RSTPDN line: driving it low resets the chip,
// which ends every fault.
func (c *Chip) ResetPin() gpio.PinOut { return &resetPin{c} }

type resetPin struct{ c *Chip }

func (p *resetPin) String() string   { return "pn532sim-RSTPDN" }
func (p *resetPin) Halt() error      { return nil }
func (p *resetPin) Name() string     { return "RSTPDN" }
func (p *resetPin) Number() int      { return -1 }
func (p *resetPin) Function() string { return "Out" }

func (p *resetPin) Out(l gpio.Level) error {
	if l == gpio.Low {
		p.c.reset()
	}
	return nil
}

func (p *resetPin) PWM(gpio.Duty, physic.Frequency) error {
	return errors.New("pn532sim: RSTPDN has no PWM")
}
