package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dkvehicled/dkvehicled/apdu"
)

// EXCHANGE operation tags (PROTOCOL.md 3.6).
const (
	OpReadPrivate       byte = 0x87
	OpWritePrivate      byte = 0x8A
	OpFillPrivate       byte = 0x95
	OpReadConfidential  byte = 0x88
	OpWriteConfidential byte = 0x8B
)

// Status is the EXCHANGE status (tag 99).
type Status uint16

// EXCHANGE statuses.
const (
	StatusDone         Status = 0x0000
	StatusOutOfBounds  Status = 0x0001
	StatusMalformed    Status = 0x0002
	StatusNotPermitted Status = 0x0003
)

// MaxRead is the most the vehicle reads in one operation.
const MaxRead = 192

// Op is one mailbox operation.
type Op struct {
	Tag    byte
	Offset int
	Length int    // reads and fills
	Data   []byte // writes
	Fill   byte   // fills
}

// ReadPrivate reads n bytes of the private mailbox at off.
func ReadPrivate(off, n int) Op { return Op{Tag: OpReadPrivate, Offset: off, Length: n} }

// ReadConfidential reads n bytes of the confidential mailbox at off.
func ReadConfidential(off, n int) Op { return Op{Tag: OpReadConfidential, Offset: off, Length: n} }

// WritePrivate writes data into the private mailbox at off.
func WritePrivate(off int, data []byte) Op { return Op{Tag: OpWritePrivate, Offset: off, Data: data} }

// WriteConfidential writes data into the confidential mailbox at off.
func WriteConfidential(off int, data []byte) Op {
	return Op{Tag: OpWriteConfidential, Offset: off, Data: data}
}

// FillPrivate fills n bytes of the private mailbox at off with b.
func FillPrivate(off, n int, b byte) Op {
	return Op{Tag: OpFillPrivate, Offset: off, Length: n, Fill: b}
}

// IsRead reports whether the operation returns data.
func (o Op) IsRead() bool { return o.Tag == OpReadPrivate || o.Tag == OpReadConfidential }

// Confidential reports whether the operation addresses the confidential mailbox.
func (o Op) Confidential() bool { return o.Tag == OpReadConfidential || o.Tag == OpWriteConfidential }

// Value returns the TLV value of the operation.
func (o Op) Value() []byte {
	v := binary.BigEndian.AppendUint16(nil, uint16(o.Offset))
	switch o.Tag {
	case OpReadPrivate, OpReadConfidential:
		v = binary.BigEndian.AppendUint16(v, uint16(o.Length))
	case OpFillPrivate:
		v = binary.BigEndian.AppendUint16(v, uint16(o.Length))
		v = append(v, o.Fill)
	default:
		v = append(v, o.Data...)
	}
	return v
}

// EncodeExchange returns the EXCHANGE plaintext: 00 followed by one TLV per operation.
func EncodeExchange(ops []Op) []byte {
	b := []byte{0x00}
	for _, o := range ops {
		b = apdu.AppendTLV(b, uint16(o.Tag), o.Value())
	}
	return b
}

// ErrMalformedExchange reports an EXCHANGE plaintext the endpoint answers with
// status 0002.
var ErrMalformedExchange = errors.New("malformed EXCHANGE")

// DecodeExchange parses an EXCHANGE plaintext (the endpoint's side).
func DecodeExchange(p []byte) ([]Op, error) {
	if len(p) == 0 || p[0] != 0x00 {
		return nil, fmt.Errorf("%w: leading byte", ErrMalformedExchange)
	}
	elems, err := apdu.ParseTLV(p[1:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedExchange, err)
	}
	ops := make([]Op, 0, len(elems))
	for _, e := range elems {
		v := e.Value
		if e.Tag > 0xFF || len(v) < 2 {
			return nil, fmt.Errorf("%w: operation %X", ErrMalformedExchange, e.Tag)
		}
		o := Op{Tag: byte(e.Tag), Offset: int(binary.BigEndian.Uint16(v))}
		switch o.Tag {
		case OpReadPrivate, OpReadConfidential:
			if len(v) != 4 {
				return nil, fmt.Errorf("%w: read of %d bytes", ErrMalformedExchange, len(v))
			}
			o.Length = int(binary.BigEndian.Uint16(v[2:]))
		case OpFillPrivate:
			if len(v) != 5 {
				return nil, fmt.Errorf("%w: fill of %d bytes", ErrMalformedExchange, len(v))
			}
			o.Length = int(binary.BigEndian.Uint16(v[2:]))
			o.Fill = v[4]
		case OpWritePrivate, OpWriteConfidential:
			o.Data = v[2:]
		default:
			return nil, fmt.Errorf("%w: unknown operation %02X", ErrMalformedExchange, o.Tag)
		}
		ops = append(ops, o)
	}
	return ops, nil
}

// EncodeExchangeResponse returns the response plaintext: one 53 per read, then
// 99 02 status. A status other than done carries no data.
func EncodeExchangeResponse(reads [][]byte, s Status) []byte {
	var b []byte
	if s == StatusDone {
		for _, r := range reads {
			b = apdu.AppendTLV(b, TagExchangeData, r)
		}
	}
	return apdu.AppendTLV(b, TagExchangeStat, binary.BigEndian.AppendUint16(nil, uint16(s)))
}

// DecodeExchangeResponse parses a response plaintext (the vehicle's side). It
// returns the status and the data of each read, in order. Unknown tags are
// skipped; a second status is an error.
func DecodeExchangeResponse(p []byte) (Status, [][]byte, error) {
	elems, err := apdu.ParseTLV(p)
	if err != nil {
		return 0, nil, err
	}
	var reads [][]byte
	var st []byte
	for _, e := range elems {
		switch e.Tag {
		case TagExchangeData:
			reads = append(reads, e.Value)
		case TagExchangeStat:
			if st != nil {
				return 0, nil, errors.New("EXCHANGE response with two statuses")
			}
			st = e.Value
		}
	}
	if len(st) != 2 {
		return 0, nil, errors.New("EXCHANGE response without a 2-byte status")
	}
	return Status(binary.BigEndian.Uint16(st)), reads, nil
}
