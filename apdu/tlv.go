package apdu

import (
	"errors"
	"fmt"
)

// ErrTLV reports BER-TLV bytes that break the strict rules of PROTOCOL.md 1.
var ErrTLV = errors.New("tlv: malformed")

// TLV is one BER-TLV element. One-byte tags are stored as 0x00NN, two-byte
// tags as 0xNNNN; a one-byte tag never has its low five bits all set, so the
// two forms cannot collide.
type TLV struct {
	Tag   uint16
	Value []byte
}

// AppendTLV appends the encoding of tag and value to dst, with the minimal
// definite length. It panics for values of 64 KiB or more, which no APDU can carry.
func AppendTLV(dst []byte, tag uint16, value []byte) []byte {
	if tag > 0xFF {
		dst = append(dst, byte(tag>>8))
	}
	dst = append(dst, byte(tag))
	switch n := len(value); {
	case n < 0x80:
		dst = append(dst, byte(n))
	case n <= 0xFF:
		dst = append(dst, 0x81, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x82, byte(n>>8), byte(n))
	default:
		panic("tlv: value too long")
	}
	return append(dst, value...)
}

// EncodeTLV returns the encoding of one element.
func EncodeTLV(tag uint16, value []byte) []byte { return AppendTLV(nil, tag, value) }

// ParseTLV decodes a sequence of elements that must fill b exactly. Values
// alias b.
func ParseTLV(b []byte) ([]TLV, error) {
	var out []TLV
	for len(b) > 0 {
		t, n, err := parseOne(b)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
		b = b[n:]
	}
	return out, nil
}

// HeaderLen decodes only the tag and length of the first element of b and
// returns the size of the header and of the value. It lets a reader learn the
// total size of an element from its first bytes.
func HeaderLen(b []byte) (header, value int, err error) {
	_, header, value, err = parseHeader(b)
	return header, value, err
}

func parseOne(b []byte) (TLV, int, error) {
	tag, h, n, err := parseHeader(b)
	if err != nil {
		return TLV{}, 0, err
	}
	if len(b)-h < n {
		return TLV{}, 0, fmt.Errorf("%w: tag %X declares %d bytes, %d remain", ErrTLV, tag, n, len(b)-h)
	}
	return TLV{Tag: tag, Value: b[h : h+n]}, h + n, nil
}

func parseHeader(b []byte) (tag uint16, header, length int, err error) {
	if len(b) < 2 {
		return 0, 0, 0, fmt.Errorf("%w: truncated header", ErrTLV)
	}
	i := 1
	tag = uint16(b[0])
	if b[0]&0x1F == 0x1F {
		if b[1]&0x80 != 0 {
			return 0, 0, 0, fmt.Errorf("%w: tag longer than two bytes", ErrTLV)
		}
		tag = tag<<8 | uint16(b[1])
		i = 2
	}
	if len(b) <= i {
		return 0, 0, 0, fmt.Errorf("%w: truncated length", ErrTLV)
	}
	l := b[i]
	i++
	switch {
	case l < 0x80:
		length = int(l)
	case l == 0x81:
		if len(b) < i+1 {
			return 0, 0, 0, fmt.Errorf("%w: truncated length", ErrTLV)
		}
		length = int(b[i])
		i++
		if length < 0x80 {
			return 0, 0, 0, fmt.Errorf("%w: non-minimal length 81 %02X", ErrTLV, length)
		}
	case l == 0x82:
		if len(b) < i+2 {
			return 0, 0, 0, fmt.Errorf("%w: truncated length", ErrTLV)
		}
		length = int(b[i])<<8 | int(b[i+1])
		i += 2
		if length <= 0xFF {
			return 0, 0, 0, fmt.Errorf("%w: non-minimal length 82 %04X", ErrTLV, length)
		}
	case l == 0x80:
		return 0, 0, 0, fmt.Errorf("%w: indefinite length", ErrTLV)
	default:
		return 0, 0, 0, fmt.Errorf("%w: length form %02X", ErrTLV, l)
	}
	return tag, i, length, nil
}

// Fields decodes b and returns the values of the known tags. Unknown tags are
// skipped; a known tag that appears twice is an error. A known tag that is
// absent is simply missing from the map.
func Fields(b []byte, known ...uint16) (map[uint16][]byte, error) {
	elems, err := ParseTLV(b)
	if err != nil {
		return nil, err
	}
	out := make(map[uint16][]byte, len(known))
	for _, e := range elems {
		for _, k := range known {
			if e.Tag != k {
				continue
			}
			if _, dup := out[k]; dup {
				return nil, fmt.Errorf("%w: duplicate tag %X", ErrTLV, k)
			}
			out[k] = e.Value
		}
	}
	return out, nil
}
