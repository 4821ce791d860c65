package pn532sim

import (
	"bytes"
	"time"
)

// UART returns the chip as a serial port in HSU mode (it has the methods of
// pn532.UARTPort). After power-up, a reset or PowerDown the chip ignores
// everything until the wake-up preamble 55 55.
func (c *Chip) UART() *UART { return &UART{c: c, timeout: -1} }

// UART is the host's side of the chip's serial port.
type UART struct {
	c       *Chip
	timeout time.Duration // negative: wait forever
}

// SetReadTimeout sets the longest wait of Read.
func (u *UART) SetReadTimeout(t time.Duration) error {
	u.timeout = t
	return nil
}

// Write sends bytes to the chip.
func (u *UART) Write(p []byte) (int, error) {
	c := u.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.uartIn = append(c.uartIn, p...)
	if c.asleep {
		i := bytes.Index(c.uartIn, []byte{0x55, 0x55})
		if i < 0 {
			c.uartIn = c.uartIn[max(0, len(c.uartIn)-1):]
			return len(p), nil
		}
		c.uartIn, c.asleep = c.uartIn[i+2:], false
	}
	for {
		k, data, used := parseFrame(c.uartIn)
		if used == 0 {
			break
		}
		c.uartIn = c.uartIn[used:]
		c.receive(k, data)
	}
	return len(p), nil
}

// Read returns what the chip sent, waiting up to the read timeout; it
// returns 0, nil when nothing came.
func (u *UART) Read(p []byte) (int, error) {
	c := u.c
	var timeout <-chan time.Time
	if u.timeout >= 0 {
		t := time.NewTimer(u.timeout)
		defer t.Stop()
		timeout = t.C
	}
	for {
		c.mu.Lock()
		if len(c.pending) == 0 && c.ready() {
			c.pending = c.pop(1 << 20)
		}
		if len(c.pending) > 0 {
			n := copy(p, c.pending)
			c.pending = c.pending[n:]
			c.mu.Unlock()
			return n, nil
		}
		c.mu.Unlock()
		select {
		case <-c.avail:
		case <-timeout:
			return 0, nil
		}
	}
}

// ResetInputBuffer drops what the chip sent and the host did not read.
func (u *UART) ResetInputBuffer() error {
	c := u.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out, c.pending = nil, nil
	return nil
}
