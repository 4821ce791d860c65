package keystore

import (
	"encoding/binary"
	"errors"
	"time"
)

// Records are stored in a compact binary form: a format byte, then fields
// in a fixed order, byte strings and text as a uvarint length and the bytes,
// integers as varints, times as Unix nanoseconds (0 for none). Decoding is
// strict: a short, long or malformed record is corrupt.

const recordFormat = 1

var errRecord = errors.New("malformed record")

type encoder struct{ b []byte }

func newEncoder() *encoder { return &encoder{b: []byte{recordFormat}} }

func (e *encoder) bytes(v []byte) {
	e.b = binary.AppendUvarint(e.b, uint64(len(v)))
	e.b = append(e.b, v...)
}

func (e *encoder) str(v string) { e.bytes([]byte(v)) }

func (e *encoder) int(v int) { e.b = binary.AppendVarint(e.b, int64(v)) }

func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.b = binary.AppendVarint(e.b, 0)
		return
	}
	e.b = binary.AppendVarint(e.b, t.UnixNano())
}

type decoder struct {
	b   []byte
	err error
}

func newDecoder(b []byte) *decoder {
	if len(b) == 0 || b[0] != recordFormat {
		return &decoder{err: errRecord}
	}
	return &decoder{b: b[1:]}
}

func (d *decoder) bytes() []byte {
	if d.err != nil {
		return nil
	}
	n, k := binary.Uvarint(d.b)
	if k <= 0 || n > uint64(len(d.b)-k) {
		d.err = errRecord
		return nil
	}
	v := d.b[k : k+int(n)]
	d.b = d.b[k+int(n):]
	if n == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

func (d *decoder) str() string { return string(d.bytes()) }

func (d *decoder) int() int {
	if d.err != nil {
		return 0
	}
	v, k := binary.Varint(d.b)
	if k <= 0 || v != int64(int(v)) {
		d.err = errRecord
		return 0
	}
	d.b = d.b[k:]
	return int(v)
}

func (d *decoder) time() time.Time {
	if d.err != nil {
		return time.Time{}
	}
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.err = errRecord
		return time.Time{}
	}
	d.b = d.b[k:]
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

// done reports the first error, or trailing bytes.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = errRecord
	}
	return d.err
}
