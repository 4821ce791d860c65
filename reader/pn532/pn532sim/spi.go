package pn532sim

import (
	"errors"
	"math/bits"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// SPI returns the chip as an SPI port. The chip shifts LSB first: when the
// driver connects without spi.LSBFirst, the port sees every byte with its
// bits reversed, as a controller that shifts MSB first would.
func (c *Chip) SPI() spi.Port { return &spiPort{c: c} }

type spiPort struct{ c *Chip }

func (p *spiPort) String() string { return "pn532sim-spi" }

func (p *spiPort) Connect(f physic.Frequency, mode spi.Mode, bits int) (spi.Conn, error) {
	if mode&^spi.LSBFirst != spi.Mode0 || bits != 8 {
		return nil, errors.New("pn532sim: the PN532 needs SPI mode 0, 8 bits")
	}
	return &spiConn{c: p.c, reversed: mode&spi.LSBFirst == 0}, nil
}

type spiConn struct {
	c        *Chip
	reversed bool
}

func (s *spiConn) String() string      { return "pn532sim-spi" }
func (s *spiConn) Duplex() conn.Duplex { return conn.Full }
func (s *spiConn) TxPackets([]spi.Packet) error {
	return errors.New("pn532sim: TxPackets is not supported")
}

func (s *spiConn) Tx(w, r []byte) error {
	if len(w) == 0 || len(r) != 0 && len(r) != len(w) {
		return errors.New("pn532sim: bad SPI transfer")
	}
	w = s.flip(append([]byte(nil), w...))
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(r)
	switch w[0] {
	case 0x01: // data write
		k, data, _ := parseFrame(w[1:])
		c.receive(k, data)
	case 0x02: // status read
		if len(r) > 1 && c.ready() {
			r[1] = 0x01
		}
	case 0x03: // data read
		if len(r) > 1 && c.ready() {
			copy(r[1:], c.pop(len(r)-1))
		}
	default:
		return errors.New("pn532sim: unknown SPI prefix")
	}
	s.flip(r)
	return nil
}

func (s *spiConn) flip(b []byte) []byte {
	if s.reversed {
		for i, c := range b {
			b[i] = bits.Reverse8(c)
		}
	}
	return b
}
