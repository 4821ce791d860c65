package pn532

import (
	"fmt"
	"math/bits"

	"periph.io/x/conn/v3/spi"
)

// SPI prefix bytes: the first byte of every SPI transfer says what it is.
const (
	spiDataWrite  = 0x01
	spiStatusRead = 0x02
	spiDataRead   = 0x03
)

// NewSPI returns a PN532 on an SPI port (mode 0, LSB first). When
// opts.BitReverse is set the driver reverses the bits of every byte itself,
// for controllers that only shift MSB first (the Raspberry Pi's); otherwise
// it asks the port for spi.LSBFirst. A nil opts means DefaultOptions().
func NewSPI(p spi.Port, opts *Options) (*Dev, error) {
	o := opts.withDefaults()
	mode := spi.Mode0
	if !o.BitReverse {
		mode |= spi.LSBFirst
	}
	c, err := p.Connect(o.SPIFrequency, mode, 8)
	if err != nil {
		return nil, fmt.Errorf("pn532: spi: %w", err)
	}
	return newDev(&polled{bus: &spiBus{c: c, reverse: o.BitReverse}, irq: o.IRQ}, o)
}

// spiBus is the PN532's SPI framing: a prefix byte, then the data.
type spiBus struct {
	c       spi.Conn
	reverse bool
}

func (s *spiBus) tx(w []byte, readLen int) ([]byte, error) {
	if s.reverse {
		reverseBits(w)
	}
	var r []byte
	if readLen > 0 {
		r = make([]byte, readLen)
	}
	if err := s.c.Tx(w, r); err != nil {
		return nil, fmt.Errorf("spi: %w", err)
	}
	if s.reverse {
		reverseBits(r)
	}
	return r, nil
}

func (s *spiBus) write(b []byte) error {
	_, err := s.tx(append([]byte{spiDataWrite}, b...), 0)
	return err
}

func (s *spiBus) ready() (bool, error) {
	r, err := s.tx([]byte{spiStatusRead, 0x00}, 2)
	if err != nil {
		return false, err
	}
	return r[1]&0x01 != 0, nil
}

func (s *spiBus) read(n int) ([]byte, error) {
	w := make([]byte, n+1)
	w[0] = spiDataRead
	r, err := s.tx(w, n+1)
	if err != nil {
		return nil, err
	}
	return r[1:], nil
}

// reverseBits reverses the bit order of every byte of b in place.
func reverseBits(b []byte) {
	for i, c := range b {
		b[i] = bits.Reverse8(c)
	}
}
