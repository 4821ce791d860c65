package endpoint

import (
	"context"
	"fmt"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/reader"
)

// Faulty wraps a phone and misbehaves on purpose, for tests: it can pull the
// phone away at a command, answer a command with an error status, or change
// any byte of any answer. Commands are counted from 0 across the tap.
type Faulty struct {
	// Card is the phone (or any card) behind the faults.
	Card apdu.Transceiver
	// DropAt pulls the phone away when command DropAt arrives: that command
	// and every later one fail with reader.ErrCardGone. Negative: never.
	DropAt int
	// StatusAt answers the listed commands with a bare status word instead
	// of passing them on.
	StatusAt map[int]uint16
	// Corrupt, when set, may return a changed copy of answer i.
	Corrupt func(i int, resp []byte) []byte

	n    int
	gone bool
}

// Flip returns a Corrupt function that XORs byte pos of answer index with mask.
func Flip(index, pos int, mask byte) func(int, []byte) []byte {
	return func(i int, r []byte) []byte {
		if i != index || pos >= len(r) {
			return r
		}
		r = append([]byte(nil), r...)
		r[pos] ^= mask
		return r
	}
}

// Count returns how many commands arrived.
func (f *Faulty) Count() int { return f.n }

// Transceive implements apdu.Transceiver.
func (f *Faulty) Transceive(ctx context.Context, c []byte) ([]byte, error) {
	i := f.n
	f.n++
	if f.gone || (f.DropAt >= 0 && i >= f.DropAt) {
		if !f.gone {
			f.gone = true
			if r, ok := f.Card.(interface{ Reset() }); ok {
				r.Reset()
			}
		}
		return nil, fmt.Errorf("%w (fault injected at command %d)", reader.ErrCardGone, i)
	}
	if sw, ok := f.StatusAt[i]; ok {
		return apdu.Status(sw), nil
	}
	r, err := f.Card.Transceive(ctx, c)
	if err != nil || f.Corrupt == nil {
		return r, err
	}
	return f.Corrupt(i, r), nil
}
