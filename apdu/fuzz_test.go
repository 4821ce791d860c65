package apdu

import (
	"bytes"
	"context"
	"errors"
	"slices"
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

// FuzzFields checks Fields against ParseTLV: every known tag it returns is
// the value of the one element with that tag, unknown tags are skipped, and
// it fails on well-formed input only for a known tag that appears twice.
func FuzzFields(f *testing.F) {
	for _, s := range []string{"5c020100", "7f500400010203d60100", "5c0201005c020100", "86410400", "9902000053020101", "5c80"} {
		f.Add(h(s), uint16(0x5C), uint16(0x7F50))
	}
	f.Fuzz(func(t *testing.T, b []byte, k1, k2 uint16) {
		known := []uint16{k1, k2}
		if k1 == k2 {
			known = known[:1] // callers name each tag once
		}
		out, err := Fields(b, known...)
		els, perr := ParseTLV(b)
		if perr != nil {
			if err == nil {
				t.Fatalf("%x: Fields accepted what ParseTLV refuses (%v)", b, perr)
			}
			return
		}
		count := map[uint16]int{}
		for _, e := range els {
			count[e.Tag]++
		}
		dup := (count[k1] > 1) || (count[k2] > 1)
		if (err != nil) != dup {
			t.Fatalf("%x with known %04X %04X: err %v, duplicate %v", b, k1, k2, err, dup)
		}
		if err != nil {
			return
		}
		for tag, v := range out {
			if !slices.Contains(known, tag) {
				t.Fatalf("%x: unknown tag %04X returned", b, tag)
			}
			i := slices.IndexFunc(els, func(e TLV) bool { return e.Tag == tag })
			if i < 0 || !bytes.Equal(els[i].Value, v) {
				t.Fatalf("%x: tag %04X value %x", b, tag, v)
			}
		}
		for _, k := range known {
			if _, ok := out[k]; ok != (count[k] == 1) {
				t.Fatalf("%x: tag %04X present %v, %d elements", b, k, ok, count[k])
			}
		}
	})
}

var errScriptEnded = errors.New("script ended")

// FuzzTransmit plays a card whose answers come from the fuzzer (each a
// length byte and that many bytes) against Transmit, and checks it
// against a model of command chaining, 6C xx and GET RESPONSE: the same
// commands, the same result, the same kind of error, and never more than
// 64 KiB joined.
func FuzzTransmit(f *testing.F) {
	f.Add(byte(0x80), byte(0xC9), uint16(0), uint16(0), h("029000"))
	f.Add(byte(0x00), byte(0xA4), uint16(13), uint16(256), h("046102000004aabb9000"))
	f.Add(byte(0x84), byte(0xC9), uint16(600), uint16(0), h("02900002900004610501020703040506610402010203029000"))
	f.Add(byte(0x80), byte(0x81), uint16(300), uint16(0), h("026a82"))
	f.Add(byte(0x80), byte(0x3C), uint16(4), uint16(256), h("026c1012000102030405060708090a0b0c0d0e0f9000"))
	f.Add(byte(0x80), byte(0x3C), uint16(4), uint16(256), h("026100026100026100"))
	f.Add(byte(0x80), byte(0x3C), uint16(4), uint16(256), h("01"))
	f.Fuzz(func(t *testing.T, cla, ins byte, dataLen, ne uint16, script []byte) {
		data := make([]byte, int(dataLen)%1100)
		for i := range data {
			data[i] = byte(i)
		}
		cmd := Command{CLA: cla, INS: ins, P1: 0x01, P2: 0x02, Data: data, Ne: int(ne) % 257}

		var answers [][]byte
		for b := script; len(b) > 0; {
			n := min(int(b[0]), len(b)-1)
			answers = append(answers, b[1:1+n])
			b = b[1+n:]
		}
		var sent [][]byte
		next := 0
		card := TransceiverFunc(func(_ context.Context, c []byte) ([]byte, error) {
			sent = append(sent, bytes.Clone(c))
			if next == len(answers) {
				return nil, errScriptEnded
			}
			next++
			return answers[next-1], nil
		})
		got, err := Transmit(context.Background(), card, cmd)

		// The model.
		var want []Command
		mi := 0
		answer := func(c Command) (Response, error) {
			want = append(want, c)
			if mi == len(answers) {
				return Response{}, errScriptEnded
			}
			mi++
			return ParseResponse(answers[mi-1])
		}
		wantResp, wantErr := func() (Response, error) {
			rest := data
			for len(rest) > MaxShortData {
				r, err := answer(Command{CLA: cla | 0x10, INS: ins, P1: 1, P2: 2, Data: rest[:MaxShortData]})
				if err != nil || r.SW != SWOK {
					return r, err
				}
				rest = rest[MaxShortData:]
			}
			last := Command{CLA: cla, INS: ins, P1: 1, P2: 2, Data: rest, Ne: cmd.Ne}
			r, err := answer(last)
			if err == nil && r.SW>>8 == 0x6C {
				last.Ne = neFromLe(byte(r.SW))
				r, err = answer(last)
			}
			if err != nil || r.SW>>8 != 0x61 {
				return r, err
			}
			joined := bytes.Clone(r.Data)
			for err == nil && r.SW>>8 == 0x61 {
				r, err = answer(Command{INS: 0xC0, Ne: neFromLe(byte(r.SW))})
				if len(joined)+len(r.Data) > maxResponse {
					return Response{}, ErrChaining
				}
				joined = append(joined, r.Data...)
			}
			return Response{Data: joined, SW: r.SW}, err
		}()
		if wantErr != nil {
			wantResp = Response{}
		}

		if len(sent) != len(want) {
			t.Fatalf("%d commands sent, the model sends %d", len(sent), len(want))
		}
		for i, c := range want {
			b, _ := c.Bytes()
			if !bytes.Equal(sent[i], b) {
				t.Fatalf("command %d: %x, want %x", i, sent[i], b)
			}
		}
		switch {
		case (err == nil) != (wantErr == nil):
			t.Fatalf("err %v, model %v", err, wantErr)
		case err != nil && !errors.Is(err, wantErr) && !(errors.Is(wantErr, ErrMalformed) && errors.Is(err, ErrMalformed)):
			t.Fatalf("err %v, model %v", err, wantErr)
		case got.SW != wantResp.SW || !bytes.Equal(got.Data, wantResp.Data):
			t.Fatalf("response %x %04X, model %x %04X", got.Data, got.SW, wantResp.Data, wantResp.SW)
		case len(got.Data) > maxResponse+256:
			t.Fatalf("response of %d bytes", len(got.Data))
		}
	})
}
