package pn532

import (
	"bytes"
	"errors"
	"testing"
)

func TestEncodeFrame(t *testing.T) {
	cases := []struct {
		data, want []byte
	}{
		{hx("D4 02"), fwCmd},
		{hx("D4 14 01 14 01"), hx("00 00 FF 05 FB D4 14 01 14 01 02 00")},
		{hx("D4 4A 01 00"), hx("00 00 FF 04 FC D4 4A 01 00 E1 00")},
		// 265 data bytes: an extended frame, LEN 0109, LCS F6.
		{cat(hx("D4 40 41"), rep(0x3C, 262)), cat(hx("00 00 FF FF FF 01 09 F6 D4 40 41"), rep(0x3C, 262), hx("43 00"))},
		// 255 data bytes still fit a normal frame.
		{cat(hx("D4 42"), rep(0x01, 253)), cat(hx("00 00 FF FF 01 D4 42"), rep(0x01, 253), hx("ED 00"))},
	}
	for _, c := range cases {
		got, err := encodeFrame(c.data)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("encodeFrame(% X...) = % X, %v; want % X", c.data[:2], got, err, c.want)
		}
	}
	if _, err := encodeFrame(cat(hx("D4 40 01"), rep(0, 263))); !errors.Is(err, ErrFrame) {
		t.Errorf("266 data bytes: err %v, want ErrFrame", err)
	}
}

func TestDecodeFrame(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		kind frameKind
		data []byte
		err  error
	}{
		{"ack", ack, kindACK, nil, nil},
		{"nack", nack, kindNACK, nil, nil},
		{"error frame", hx("00 00 FF 01 FF 7F 81 00"), kindError, nil, nil},
		{"response", fwResp, kindInfo, hx("D5 03 32 01 06 07"), nil},
		{"no postamble", hx("00 00 FF 06 FA D5 03 32 01 06 07 E8"), kindInfo, hx("D5 03 32 01 06 07"), nil},
		{"no preamble", hx("00 FF 02 FE D5 15 16 00"), kindInfo, hx("D5 15"), nil},
		{"long preamble", hx("00 00 00 00 FF 02 FE D5 15 16 00"), kindInfo, hx("D5 15"), nil},
		{"extended", cat(hx("00 00 FF FF FF 01 09 F6 D5 41 40"), rep(0xA5, 262), hx("CC 00")), kindInfo, cat(hx("D5 41 40"), rep(0xA5, 262)), nil},
		{"bad LCS", hx("00 00 FF 06 FB D5 03 32 01 06 07 E8 00"), 0, nil, ErrChecksum},
		{"bad DCS", hx("00 00 FF 06 FA D5 03 32 01 06 07 E9 00"), 0, nil, ErrChecksum},
		{"bad extended LCS", cat(hx("00 00 FF FF FF 01 09 F7 D5 41 40"), rep(0xA5, 262), hx("CC 00")), 0, nil, ErrChecksum},
		{"too long", hx("00 00 FF FF FF 01 0A F5 D5"), 0, nil, ErrFrame},
		{"empty", hx("00 00 FF 00 00 00 00"), 0, nil, ErrFrame},
		{"truncated", hx("00 00 FF 06 FA D5 03 32"), 0, nil, ErrFrame},
		{"no start code", hx("00 00 AA 02 FE D5 15 16 00"), 0, nil, ErrFrame},
		{"garbage first", hx("12 00 FF 02 FE D5 15 16 00"), 0, nil, ErrFrame},
		{"nothing", nil, 0, nil, ErrFrame},
	}
	for _, c := range cases {
		kind, data, err := decodeFrame(c.in)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%s: err %v, want %v", c.name, err, c.err)
			}
			continue
		}
		if err != nil || kind != c.kind || !bytes.Equal(data, c.data) {
			t.Errorf("%s: got %v % X %v; want %v % X", c.name, kind, data, err, c.kind, c.data)
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range [][]byte{
		ack, nack, fwResp, fwCmd,
		hx("00 00 FF 01 FF 7F 81 00"),
		hx("00 FF 02 FE D5 15 16"),
		cat(hx("00 00 FF FF FF 01 09 F6 D5 41 40"), rep(0xA5, 262), hx("CC 00")),
		hx("00 00 FF FF FF 00 01 FF D5 2A"),
		hx("00 00 FF 06 FB D5 03"),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, herr := parseHeader(b)
		kind, data, err := decodeFrame(b)
		if err != nil {
			if !errors.Is(err, ErrFrame) && !errors.Is(err, ErrChecksum) {
				t.Fatalf("error %v is neither ErrFrame nor ErrChecksum", err)
			}
			return
		}
		if herr != nil || h.end > len(b) {
			t.Fatalf("decoded a frame whose header does not parse (%v) or ends past the input (%d > %d)", herr, h.end, len(b))
		}
		if kind != kindInfo {
			return
		}
		// Whatever decodes re-encodes to a frame that decodes the same.
		f, err := encodeFrame(data)
		if err != nil {
			t.Fatalf("decoded data % X does not encode: %v", data, err)
		}
		kind2, data2, err := decodeFrame(f)
		if err != nil || kind2 != kindInfo || !bytes.Equal(data, data2) {
			t.Fatalf("re-encoded % X decodes as %v % X %v", f, kind2, data2, err)
		}
	})
}
