package apdu

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
)

func h(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestCommandBytes(t *testing.T) {
	cases := []struct {
		c    Command
		want string
	}{
		{Command{CLA: 0x80, INS: 0x3C, P1: 1}, "803c0100"},
		{Command{CLA: 0x00, INS: 0xC0, Ne: 256}, "00c0000000"},
		{Command{CLA: 0x00, INS: 0xC0, Ne: 0x24}, "00c0000024"},
		{Command{CLA: 0x00, INS: 0xA4, P1: 4, Data: h("a000000809434343444b417631"), Ne: 256}, "00a404000da000000809434343444b41763100"},
		{Command{CLA: 0x84, INS: 0xD4, Data: []byte{1, 2}}, "84d40000020102"},
	}
	for _, c := range cases {
		got, err := c.c.Bytes()
		if err != nil || hex.EncodeToString(got) != c.want {
			t.Errorf("%v: got %x, %v; want %s", c.c, got, err, c.want)
		}
	}
	if _, err := (Command{Data: make([]byte, 256)}).Bytes(); err == nil {
		t.Error("256 data bytes encoded as a short APDU")
	}
	if _, err := (Command{Ne: 257}).Bytes(); err == nil {
		t.Error("Ne 257 accepted")
	}
}

func TestParseCommandWithAndWithoutLe(t *testing.T) {
	with, err := ParseCommand(h("80800101045c020100" + "00"))
	if err != nil {
		t.Fatal(err)
	}
	without, err := ParseCommand(h("80800101045c020100"))
	if err != nil {
		t.Fatal(err)
	}
	if with.Ne != 256 || without.Ne != 0 {
		t.Fatalf("Ne: with %d, without %d", with.Ne, without.Ne)
	}
	if !bytes.Equal(with.Data, without.Data) || !bytes.Equal(with.Data, h("5c020100")) || with.INS != 0x80 || with.P1 != 1 || with.P2 != 1 {
		t.Fatalf("parsed %v / %v", with, without)
	}
	for _, bad := range []string{"", "803c01", "8080000003aabb", "8080000002aabbccdd", "80800000000000"} {
		if _, err := ParseCommand(h(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v", bad, err)
		}
	}
	c, err := ParseCommand(h("00c0000010"))
	if err != nil || c.Ne != 16 || c.Data != nil {
		t.Fatalf("case 2: %v %v", c, err)
	}
}

func TestResponse(t *testing.T) {
	r, err := ParseResponse(h("5c0201009000"))
	if err != nil || !r.OK() || !bytes.Equal(r.Data, h("5c020100")) {
		t.Fatalf("%v %v", r, err)
	}
	if !bytes.Equal(r.Bytes(), h("5c0201009000")) {
		t.Fatal("round trip")
	}
	if _, err := ParseResponse([]byte{0x90}); err == nil {
		t.Fatal("1-byte response accepted")
	}
	r, _ = ParseResponse(h("6a82"))
	if r.SW != SWFileNotFound || len(r.Data) != 0 {
		t.Fatalf("%v", r)
	}
}

// script answers each expected command with a fixed response and fails on
// anything else.
type script struct {
	t     *testing.T
	steps [][2]string
	i     int
}

func (s *script) Transceive(_ context.Context, c []byte) ([]byte, error) {
	if s.i >= len(s.steps) {
		s.t.Fatalf("unexpected command %x", c)
	}
	st := s.steps[s.i]
	s.i++
	if hex.EncodeToString(c) != st[0] {
		s.t.Fatalf("command %d: got %x want %s", s.i-1, c, st[0])
	}
	return h(st[1]), nil
}

func TestTransmitGetResponse(t *testing.T) {
	s := &script{t: t, steps: [][2]string{
		{"84ca7f200800112233445566770" + "0", "aabb6100"},
		{"00c0000000", "ccdd6103"},
		{"00c0000003", "eeff119000"},
	}}
	r, err := Transmit(context.Background(), s, Command{CLA: 0x84, INS: 0xCA, P1: 0x7F, P2: 0x20, Data: h("0011223344556677"), Ne: 256})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || hex.EncodeToString(r.Data) != "aabbccddeeff11" || s.i != 3 {
		t.Fatalf("got %x %04X after %d steps", r.Data, r.SW, s.i)
	}
}

func TestTransmitWrongLe(t *testing.T) {
	s := &script{t: t, steps: [][2]string{
		{"80ca000000", "6c05"},
		{"80ca000005", "01020304059000"},
	}}
	r, err := Transmit(context.Background(), s, Command{CLA: 0x80, INS: 0xCA, Ne: 256})
	if err != nil || !r.OK() || len(r.Data) != 5 {
		t.Fatalf("%v %v", r, err)
	}
}

func TestTransmitCommandChaining(t *testing.T) {
	data := make([]byte, 255+255+74)
	for i := range data {
		data[i] = byte(i)
	}
	var seen [][]byte
	tr := TransceiverFunc(func(_ context.Context, c []byte) ([]byte, error) {
		seen = append(seen, append([]byte(nil), c...))
		return h("9000"), nil
	})
	if _, err := Transmit(context.Background(), tr, Command{CLA: 0x84, INS: 0xD4, Data: data, Ne: 256}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 {
		t.Fatalf("%d parts", len(seen))
	}
	for i, want := range []struct {
		cla byte
		n   int
		le  bool
	}{{0x94, 255, false}, {0x94, 255, false}, {0x84, 74, true}} {
		c, err := ParseCommand(seen[i])
		if err != nil || c.CLA != want.cla || len(c.Data) != want.n || (c.Ne == 256) != want.le {
			t.Errorf("part %d: %v %v", i, c, err)
		}
	}
	var joined []byte
	for _, s := range seen {
		c, _ := ParseCommand(s)
		joined = append(joined, c.Data...)
	}
	if !bytes.Equal(joined, data) {
		t.Error("parts do not join to the data")
	}
}

func TestTransmitChainingRefused(t *testing.T) {
	n := 0
	tr := TransceiverFunc(func(_ context.Context, c []byte) ([]byte, error) {
		n++
		return h("6a88"), nil
	})
	r, err := Transmit(context.Background(), tr, Command{CLA: 0x84, INS: 0xD4, Data: make([]byte, 300)})
	if err != nil || r.SW != SWReferencedDataNF || n != 1 {
		t.Fatalf("%v %v after %d parts", r, err, n)
	}
}

func TestTransmitEndlessGetResponse(t *testing.T) {
	tr := TransceiverFunc(func(_ context.Context, c []byte) ([]byte, error) {
		return append(make([]byte, 256), 0x61, 0x00), nil
	})
	if _, err := Transmit(context.Background(), tr, Command{INS: 0xCA, Ne: 256}); !errors.Is(err, ErrChaining) {
		t.Fatalf("err %v", err)
	}
}

func TestTransmitError(t *testing.T) {
	gone := errors.New("card gone")
	tr := TransceiverFunc(func(context.Context, []byte) ([]byte, error) { return nil, gone })
	if _, err := Transmit(context.Background(), tr, Command{}); !errors.Is(err, gone) {
		t.Fatal(err)
	}
}

func TestTLVStrict(t *testing.T) {
	good := []struct {
		in   string
		tags []uint16
	}{
		{"5c020100", []uint16{0x5C}},
		{"7f500400010203" + "d60100", []uint16{0x7F50, 0xD6}},
		{"53" + "8180" + fmt.Sprintf("%0256x", 0), []uint16{0x53}},
		{"53" + "820100" + fmt.Sprintf("%0512x", 0), []uint16{0x53}},
		{"9900", []uint16{0x99}},
	}
	for _, g := range good {
		els, err := ParseTLV(h(g.in))
		if err != nil || len(els) != len(g.tags) {
			t.Errorf("%s: %v %v", g.in, els, err)
			continue
		}
		var re []byte
		for i, e := range els {
			if e.Tag != g.tags[i] {
				t.Errorf("%s: tag %X want %X", g.in, e.Tag, g.tags[i])
			}
			re = AppendTLV(re, e.Tag, e.Value)
		}
		if hex.EncodeToString(re) != g.in {
			t.Errorf("re-encode %x != %s", re, g.in)
		}
	}
	bad := []string{
		"5c03010203ff"[:8],  // truncated value
		"5c",                // truncated header
		"5c80",              // indefinite
		"5c817f" + "00",     // non-minimal 81
		"5c820080" + "00",   // non-minimal 82
		"5c83000001" + "00", // 3-byte length
		"7f",                // truncated 2-byte tag
		"7fd001" + "00",     // 3-byte tag
		"5c0201",            // runs past
	}
	for _, b := range bad {
		if _, err := ParseTLV(h(b)); !errors.Is(err, ErrTLV) {
			t.Errorf("%s accepted (%v)", b, err)
		}
	}
}

func TestFields(t *testing.T) {
	f, err := Fields(h("86020102"+"9d0100"+"0100"), 0x86)
	if err != nil || len(f) != 1 || !bytes.Equal(f[0x86], []byte{1, 2}) {
		t.Fatalf("%v %v", f, err)
	}
	// 9D repeated is fine when it is not a known tag, an error when it is.
	if _, err := Fields(h("860101"+"9d0100"+"9d0100"), 0x86); err != nil {
		t.Fatal(err)
	}
	if _, err := Fields(h("860101"+"9d0100"+"9d0100"), 0x86, 0x9D); !errors.Is(err, ErrTLV) {
		t.Fatalf("duplicate known tag accepted: %v", err)
	}
}

func TestHeaderLen(t *testing.T) {
	hd, n, err := HeaderLen(h("3081e130"))
	if err != nil || hd != 3 || n != 0xe1 {
		t.Fatalf("%d %d %v", hd, n, err)
	}
	hd, n, err = HeaderLen(h("308201fd"))
	if err != nil || hd != 4 || n != 0x1fd {
		t.Fatalf("%d %d %v", hd, n, err)
	}
}
