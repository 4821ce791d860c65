// Package securechannel implements the secure messaging of PROTOCOL.md 3.5:
// AES-CBC with a counter-derived ICV, ISO 9797-1 padding method 2, and
// AES-CMAC over a chaining value that only commands move. The vehicle wraps
// commands and unwraps responses; the endpoint does the reverse with the same
// state.
package securechannel

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/dkvehicled/dkvehicled/internal/cmac"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

// MACLen is the length of a C-MAC or R-MAC on the wire.
const MACLen = 8

// Errors of unwrapping. None of them says anything about the keys.
var (
	ErrMAC     = errors.New("secure channel: MAC mismatch")
	ErrPadding = errors.New("secure channel: bad padding")
	ErrLength  = errors.New("secure channel: bad length")
	ErrCounter = errors.New("secure channel: counter exhausted")
)

// Trace records the intermediates of one wrap or unwrap, for tests against
// the vectors' channel traces. Production code leaves Channel.Trace nil.
type Trace struct {
	Op                       string // "wrap_command" or "unwrap_response" (or the endpoint's unwrap_command, wrap_response)
	Counter, CounterAfter    int
	ChainBefore, ChainAfter  [16]byte
	Plaintext, Padded, ICV   []byte
	Ciphertext, MACFull, MAC []byte
	// Failed is set when an unwrap was refused; ChainAfter and CounterAfter
	// are then meaningless, and Padded and Plaintext hold what was reached.
	Failed bool
}

// Channel is the state of one secure channel.
type Channel struct {
	enc       cipher.Block
	mac, rmac *cmac.MAC
	counter   int
	chain     [16]byte
	// Trace, when set, receives the intermediates of every operation.
	Trace func(Trace)
}

// New opens a channel with the session keys and the starting counter.
func New(k keys.SessionKeys, counter int) (*Channel, error) {
	enc, err := aes.NewCipher(k.Enc)
	if err != nil {
		return nil, fmt.Errorf("secure channel: Kenc: %w", err)
	}
	mac, err := cmac.New(k.Mac)
	if err != nil {
		return nil, fmt.Errorf("secure channel: Kmac: %w", err)
	}
	rmac, err := cmac.New(k.Rmac)
	if err != nil {
		return nil, fmt.Errorf("secure channel: Krmac: %w", err)
	}
	return &Channel{enc: enc, mac: mac, rmac: rmac, counter: counter}, nil
}

// Counter returns the current counter.
func (c *Channel) Counter() int { return c.counter }

func (c *Channel) icv(first byte) []byte {
	b := make([]byte, aes.BlockSize)
	b[0] = first
	b[aes.BlockSize-1] = byte(c.counter)
	c.enc.Encrypt(b, b)
	return b
}

func pad(p []byte) []byte {
	n := (len(p)/aes.BlockSize + 1) * aes.BlockSize
	b := make([]byte, n)
	copy(b, p)
	b[len(p)] = 0x80
	return b
}

// unpad removes ISO 9797-1 method 2 padding, which must lie in the last
// block. The MAC is checked before decryption, so no padding oracle exists.
func unpad(b []byte) ([]byte, error) {
	for i := len(b) - 1; i >= len(b)-aes.BlockSize && i >= 0; i-- {
		switch b[i] {
		case 0x80:
			return b[:i], nil
		case 0x00:
		default:
			return nil, ErrPadding
		}
	}
	return nil, ErrPadding
}

// WrapCommand protects a command's data (vehicle side): C ‖ C-MAC. An empty
// plaintext gives the C-MAC alone.
func (c *Channel) WrapCommand(p []byte) ([]byte, error) {
	if c.counter > 0xFF {
		return nil, ErrCounter
	}
	t := Trace{Op: "wrap_command", Counter: c.counter, ChainBefore: c.chain, Plaintext: p}
	var ct []byte
	if len(p) > 0 {
		t.Padded = pad(p)
		t.ICV = c.icv(0x00)
		ct = make([]byte, len(t.Padded))
		cipher.NewCBCEncrypter(c.enc, t.ICV).CryptBlocks(ct, t.Padded)
	}
	full := c.mac.Sum(c.chain[:], ct)
	c.chain = full
	t.Ciphertext, t.MACFull, t.MAC = ct, full[:], full[:MACLen]
	t.ChainAfter, t.CounterAfter = c.chain, c.counter
	c.trace(t)
	return append(ct, full[:MACLen]...), nil
}

// UnwrapResponse checks and decrypts a response's data (vehicle side), then
// raises the counter.
func (c *Channel) UnwrapResponse(d []byte) ([]byte, error) {
	if len(d) < MACLen || (len(d)-MACLen)%aes.BlockSize != 0 || c.counter > 0xFF {
		return nil, ErrLength
	}
	ct, mac := d[:len(d)-MACLen], d[len(d)-MACLen:]
	t := Trace{Op: "unwrap_response", Counter: c.counter, ChainBefore: c.chain, Ciphertext: ct, MAC: mac}
	full := c.rmac.Sum(c.chain[:], ct)
	t.MACFull = full[:]
	if subtle.ConstantTimeCompare(full[:MACLen], mac) != 1 {
		return nil, c.refuse(t, ErrMAC)
	}
	p, err := c.decrypt(&t, 0x80, ct)
	if err != nil {
		return nil, c.refuse(t, err)
	}
	c.counter++
	t.ChainAfter, t.CounterAfter = c.chain, c.counter
	c.trace(t)
	return p, nil
}

// UnwrapCommand checks and decrypts a command's data (endpoint side) and
// moves the chaining value.
func (c *Channel) UnwrapCommand(d []byte) ([]byte, error) {
	if len(d) < MACLen || (len(d)-MACLen)%aes.BlockSize != 0 || c.counter > 0xFF {
		return nil, ErrLength
	}
	ct, mac := d[:len(d)-MACLen], d[len(d)-MACLen:]
	t := Trace{Op: "unwrap_command", Counter: c.counter, ChainBefore: c.chain, Ciphertext: ct, MAC: mac}
	full := c.mac.Sum(c.chain[:], ct)
	t.MACFull = full[:]
	if subtle.ConstantTimeCompare(full[:MACLen], mac) != 1 {
		return nil, c.refuse(t, ErrMAC)
	}
	p, err := c.decrypt(&t, 0x00, ct)
	if err != nil {
		return nil, c.refuse(t, err)
	}
	c.chain = full
	t.ChainAfter, t.CounterAfter = c.chain, c.counter
	c.trace(t)
	return p, nil
}

// WrapResponse protects a response's data (endpoint side), then raises the
// counter. An empty plaintext gives the R-MAC alone.
func (c *Channel) WrapResponse(p []byte) ([]byte, error) {
	if c.counter > 0xFF {
		return nil, ErrCounter
	}
	t := Trace{Op: "wrap_response", Counter: c.counter, ChainBefore: c.chain, Plaintext: p}
	var ct []byte
	if len(p) > 0 {
		t.Padded = pad(p)
		t.ICV = c.icv(0x80)
		ct = make([]byte, len(t.Padded))
		cipher.NewCBCEncrypter(c.enc, t.ICV).CryptBlocks(ct, t.Padded)
	}
	full := c.rmac.Sum(c.chain[:], ct)
	c.counter++
	t.Ciphertext, t.MACFull, t.MAC = ct, full[:], full[:MACLen]
	t.ChainAfter, t.CounterAfter = c.chain, c.counter
	c.trace(t)
	return append(ct, full[:MACLen]...), nil
}

func (c *Channel) decrypt(t *Trace, first byte, ct []byte) ([]byte, error) {
	if len(ct) == 0 {
		return []byte{}, nil
	}
	t.ICV = c.icv(first)
	padded := make([]byte, len(ct))
	cipher.NewCBCDecrypter(c.enc, t.ICV).CryptBlocks(padded, ct)
	t.Padded = padded
	p, err := unpad(padded)
	if err != nil {
		return nil, err
	}
	t.Plaintext = p
	return p, nil
}

func (c *Channel) refuse(t Trace, err error) error {
	t.Failed = true
	c.trace(t)
	return err
}

func (c *Channel) trace(t Trace) {
	if c.Trace != nil {
		c.Trace(t)
	}
}
