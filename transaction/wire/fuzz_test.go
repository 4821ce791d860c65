package wire

import (
	"bytes"
	"testing"
)

func FuzzDecodeExchange(f *testing.F) {
	for _, s := range [][]byte{
		{0x00, 0x87, 0x04, 0, 0, 0, 2},
		{0x00, 0x8a, 0x06, 0, 0x42, 1, 2, 3, 4, 0x95, 0x05, 0, 0x46, 0, 4, 0xaa},
		{0x00, 0x88, 0x04, 0, 0x78, 0, 0x10},
		{0x01, 0x87, 0x04, 0, 0, 0, 1},
		{0x00, 0x8c, 0x01, 0x00},
		{0x00},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		ops, err := DecodeExchange(p)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same plaintext.
		if re := EncodeExchange(ops); !bytes.Equal(re, p) {
			t.Fatalf("%x re-encodes to %x", p, re)
		}
	})
}

func FuzzDecodeExchangeResponse(f *testing.F) {
	f.Add([]byte{0x53, 0x02, 0x00, 0xff, 0x99, 0x02, 0, 0})
	f.Add([]byte{0x99, 0x02, 0, 1})
	f.Add([]byte{0x53, 0x81, 0x80})
	f.Fuzz(func(t *testing.T, p []byte) {
		_, reads, err := DecodeExchangeResponse(p)
		if err != nil {
			return
		}
		total := 0
		for _, r := range reads {
			total += len(r)
		}
		if total > len(p) {
			t.Fatal("reads longer than the response")
		}
	})
}

// FuzzDecodeVersions checks the 5C version list both ways: a non-empty,
// even-length list decodes, re-encodes to the same bytes, and anything
// else is refused.
func FuzzDecodeVersions(f *testing.F) {
	for _, s := range [][]byte{{0x01, 0x00}, {0x01, 0x00, 0x02, 0x00}, {}, {0x01}, {0xFF, 0xFF, 0x00}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		vs, err := DecodeVersions(b)
		if (err == nil) != (len(b) > 0 && len(b)%2 == 0) {
			t.Fatalf("%x: %v", b, err)
		}
		if err == nil && (len(vs) != len(b)/2 || !bytes.Equal(EncodeVersions(vs), b)) {
			t.Fatalf("%x decodes to %v, which encodes to %x", b, vs, EncodeVersions(vs))
		}
	})
}
