// Package cmac implements AES-CMAC (RFC 4493), the MAC of the secure channel
// and of the SPAKE2+ confirmation.
package cmac

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
)

// Size is the length of a full CMAC.
const Size = 16

// MAC holds the subkeys of one AES key.
type MAC struct {
	block  cipher.Block
	k1, k2 [Size]byte
}

// New prepares a CMAC for key (16, 24 or 32 bytes).
func New(key []byte) (*MAC, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return NewFromBlock(b), nil
}

// NewFromBlock prepares a CMAC for an AES block cipher the caller already holds.
func NewFromBlock(b cipher.Block) *MAC {
	m := &MAC{block: b}
	var l [Size]byte
	b.Encrypt(l[:], l[:])
	m.k1 = double(l)
	m.k2 = double(m.k1)
	return m
}

// Subkeys returns K1 and K2 (for checking against RFC 4493).
func (m *MAC) Subkeys() (k1, k2 [Size]byte) { return m.k1, m.k2 }

func double(in [Size]byte) [Size]byte {
	var out [Size]byte
	carry := in[0] >> 7
	for i := 0; i < Size-1; i++ {
		out[i] = in[i]<<1 | in[i+1]>>7
	}
	out[Size-1] = in[Size-1]<<1 ^ byte(subtle.ConstantTimeSelect(int(carry), 0x87, 0))
	return out
}

// Sum returns the CMAC of the concatenation of parts.
func (m *MAC) Sum(parts ...[]byte) [Size]byte {
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	var x, blk [Size]byte
	// Number of complete blocks before the last one.
	n := (total + Size - 1) / Size
	if n == 0 {
		n = 1
	}
	complete := total != 0 && total%Size == 0
	filled, done := 0, 0
	for _, p := range parts {
		for len(p) > 0 {
			c := copy(blk[filled:], p)
			filled += c
			p = p[c:]
			if filled == Size && done < n-1 {
				subtle.XORBytes(x[:], x[:], blk[:])
				m.block.Encrypt(x[:], x[:])
				filled = 0
				done++
			}
		}
	}
	// blk[:filled] is the last (possibly partial) block.
	if complete {
		subtle.XORBytes(blk[:], blk[:], m.k1[:])
	} else {
		blk[filled] = 0x80
		for i := filled + 1; i < Size; i++ {
			blk[i] = 0
		}
		subtle.XORBytes(blk[:], blk[:], m.k2[:])
	}
	subtle.XORBytes(x[:], x[:], blk[:])
	m.block.Encrypt(x[:], x[:])
	return x
}
