package apdu

import (
	"bytes"
	"testing"
)

func FuzzParseTLV(f *testing.F) {
	for _, s := range []string{"5c020100", "7f500400010203d60100", "538180", "5c80", "7fd001", "8641040000", "9902000053020101"} {
		f.Add(h(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		els, err := ParseTLV(b)
		if err != nil {
			return
		}
		// Whatever parses strictly must re-encode to the same bytes.
		var re []byte
		for _, e := range els {
			re = AppendTLV(re, e.Tag, e.Value)
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("re-encoding %x gives %x", b, re)
		}
	})
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"803c0100", "00a404000da000000809434343444b41763100", "80810000429e40", "00c0000000", "8080000003aabbcc"} {
		f.Add(h(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCommand(b)
		if err != nil {
			return
		}
		re, err := c.Bytes()
		if err != nil {
			t.Fatalf("parsed command %v does not encode: %v", c, err)
		}
		// Re-encoding differs from the input only where Le 00 and an absent
		// Lc collide; parse it again to compare the meaning.
		c2, err := ParseCommand(re)
		if err != nil || c2.CLA != c.CLA || c2.INS != c.INS || c2.P1 != c.P1 || c2.P2 != c.P2 || !bytes.Equal(c2.Data, c.Data) || c2.Ne != c.Ne {
			t.Fatalf("%x -> %v -> %x -> %v %v", b, c, re, c2, err)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add(h("5c0201009000"))
	f.Add(h("6a82"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Bytes(), b) {
			t.Fatal("round trip")
		}
	})
}
