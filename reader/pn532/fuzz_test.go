package pn532

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// The chip's answers are parsed in two layers: frames (FuzzDecodeFrame, and
// FuzzUARTStream for the HSU byte stream) and the parameters of each
// command's response (FuzzCommandResponses, FuzzParseTarget).

// scriptChip is a transport that ACKs every command and answers it with the
// next scripted parameters, wrapped in a response frame for that command.
type scriptChip struct {
	script  []chipAnswer
	given   [][]byte // parameters handed out in response frames, in order
	written [][]byte // frame data (TFI, code, parameters) of the commands
}

// chipAnswer is one scripted answer: response parameters, or a misbehaving
// frame.
type chipAnswer struct {
	params []byte
	kind   byte // 0: response; 1: error frame; 2: bad checksum; 3: wrong code
}

// parseScript cuts b into answers: a length byte and that many bytes; the
// length bytes FF, FE and FD are an error frame, a frame with a bad data
// checksum and a response to another command, and FC takes the next 263
// bytes (a status byte and the longest DataIn).
func parseScript(b []byte) []chipAnswer {
	var out []chipAnswer
	for len(b) > 0 {
		n := int(b[0])
		b = b[1:]
		switch n {
		case 0xFF, 0xFE, 0xFD:
			out = append(out, chipAnswer{kind: byte(0xFF - n + 1)})
			continue
		case 0xFC:
			n = 1 + maxDataOut
		}
		n = min(n, len(b))
		out = append(out, chipAnswer{params: b[:n:n]})
		b = b[n:]
	}
	return out
}

func (s *scriptChip) write(frame []byte) error {
	if kind, data, err := decodeFrame(frame); err == nil && kind == kindInfo {
		s.written = append(s.written, data)
	}
	return nil
}

func (s *scriptChip) readAck(context.Context, time.Time) ([]byte, error) { return ackFrame, nil }

func (s *scriptChip) readFrame(context.Context, time.Time) ([]byte, error) {
	if len(s.script) == 0 {
		return nil, ErrTimeout
	}
	a := s.script[0]
	s.script = s.script[1:]
	cmd := s.written[len(s.written)-1][1]
	switch a.kind {
	case 1:
		return hx("00 00 FF 01 FF 7F 81 00"), nil
	case 2:
		f, _ := encodeFrame([]byte{chipTFI, cmd + 1})
		f[len(f)-2]++
		return f, nil
	case 3:
		f, _ := encodeFrame([]byte{chipTFI, cmd + 3})
		return f, nil
	}
	f, err := encodeFrame(append([]byte{chipTFI, cmd + 1}, a.params...))
	if err != nil {
		return nil, err
	}
	s.given = append(s.given, a.params)
	return f, nil
}

func (s *scriptChip) wake()  {}
func (s *scriptChip) flush() {}

// encodeTarget is the InListPassiveTarget answer for one target.
func encodeTarget(t *Target) []byte {
	b := []byte{1, t.Tg, byte(t.ATQA >> 8), byte(t.ATQA), t.SAK, byte(len(t.UID))}
	return append(append(b, t.UID...), t.ATS...)
}

func sameTarget(a, b *Target) bool {
	return a.Tg == b.Tg && a.ATQA == b.ATQA && a.SAK == b.SAK && bytes.Equal(a.UID, b.UID) && bytes.Equal(a.ATS, b.ATS)
}

// FuzzParseTarget checks the InListPassiveTarget parser: no target only for
// NbTg 0, and a target is exactly what the first bytes of the answer say
// (it re-encodes to a prefix of the answer and parses back the same), in
// copies that do not alias the chip's buffer.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{
		"01 01 00 04 20 04 08 12 34 56 05 78 80 70 02",
		"01 01 00 44 08 07 04 11 22 33 44 55 66",
		"00", "", "01 01 00 04 20", "01 01 00 04 20 04 08 12 34 56 05 78",
		"01 01 00 04 20 00 01 01 FF",
		"02 01 00 04 20 04 08 12 34 56 05 78 80 70 02 02 00 04 20 04 01 02 03 04",
	} {
		f.Add(hx(s))
	}
	f.Fuzz(func(t *testing.T, r []byte) {
		in := bytes.Clone(r)
		tg, err := parseTarget(r)
		if err != nil {
			if tg != nil || !errors.Is(err, ErrFrame) {
				t.Fatalf("% X: target %v with error %v", r, tg, err)
			}
			return
		}
		if tg == nil {
			if len(r) == 0 || r[0] != 0 {
				t.Fatalf("% X: no target without NbTg 0", r)
			}
			return
		}
		enc := encodeTarget(tg)
		if !bytes.HasPrefix(r[1:], enc[1:]) || r[0] == 0 {
			t.Fatalf("% X: target %+v re-encodes to % X", r, tg, enc)
		}
		if len(tg.ATS) > 0 && int(tg.ATS[0]) != len(tg.ATS) {
			t.Fatalf("% X: ATS % X does not start with its length", r, tg.ATS)
		}
		again, err := parseTarget(enc)
		if err != nil || again == nil || !sameTarget(tg, again) {
			t.Fatalf("% X: target %+v parses back as %+v, %v", r, tg, again, err)
		}
		for i := range r {
			r[i] ^= 0xFF
		}
		if got, _ := parseTarget(in); !sameTarget(tg, got) {
			t.Fatalf("% X: target aliases the chip's buffer", in)
		}
	})
}

// FuzzCommandResponses runs one driver command against a chip answering
// with scripted parameters (see parseScript) and checks each command's
// contract: GetFirmwareVersion takes exactly four bytes; InListPassiveTarget
// returns parseTarget's target; InDataExchange sends the data in parts of
// at most 262 bytes with MI set on all but the last, stops at the first
// non-zero status, and returns exactly the data of the answers chained with
// MI, at most 64 KiB and one part; Diagnose, InRelease and
// InCommunicateThru read the status byte; an error frame is
// ErrApplication; and no command panics on a short or garbled answer.
func FuzzCommandResponses(f *testing.F) {
	f.Add(byte(0), uint16(0), hx("04 32 01 06 07"))
	f.Add(byte(0), uint16(0), hx("03 32 01 06"))
	f.Add(byte(1), uint16(0), hx("0F 01 01 00 04 20 04 08 12 34 56 05 78 80 70 02"))
	f.Add(byte(1), uint16(0), hx("01 00"))
	f.Add(byte(2), uint16(7), hx("03 00 90 00"))
	f.Add(byte(2), uint16(300), hx("01 00 05 40 AA BB CC DD 05 40 EE FF 00 11 03 00 90 00"))
	f.Add(byte(2), uint16(600), hx("01 00 01 00 03 00 90 00"))
	f.Add(byte(2), uint16(7), append(append(hx("FC 40"), bytes.Repeat([]byte{0xA5}, 262)...), hx("03 00 90 00")...))
	f.Add(byte(2), uint16(7), hx("01 01"))
	f.Add(byte(2), uint16(7), hx("FE 03 00 90 00"))
	f.Add(byte(2), uint16(7), hx("00"))
	f.Add(byte(3), uint16(0), hx("01 00"))
	f.Add(byte(4), uint16(0), hx("01 27"))
	f.Add(byte(5), uint16(0), hx("01 01"))
	f.Add(byte(5), uint16(0), hx("FF"))
	f.Add(byte(5), uint16(0), hx("FD"))
	f.Fuzz(func(t *testing.T, which byte, outLen uint16, script []byte) {
		answers := parseScript(script)
		chip := &scriptChip{script: answers}
		d, err := newDev(chip, (*Options)(nil).withDefaults())
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		first := []byte(nil)
		firstOK := false
		for i, a := range answers {
			if a.kind == 0 {
				first, firstOK = a.params, true
				break
			}
			if a.kind != 2 || i+1 >= maxTries { // a bad checksum is asked for again
				break
			}
		}
		errorFrame := len(answers) > 0 && answers[0].kind == 1
		checkErr := func(err error) {
			t.Helper()
			if errorFrame && !errors.Is(err, ErrApplication) {
				t.Fatalf("error frame answered: err %v", err)
			}
		}
		switch which % 6 {
		case 0:
			fw, err := d.getFirmwareVersion(ctx)
			checkErr(err)
			ok := firstOK && len(first) == 4
			if (err == nil) != ok || (ok && (fw != firmware{first[0], first[1], first[2], first[3]})) {
				t.Fatalf("firmware answer % X: %v, %v", first, fw, err)
			}
		case 1:
			tg, err := d.inListPassiveTarget(ctx)
			checkErr(err)
			if !firstOK {
				if err == nil {
					t.Fatal("a target list without an answer")
				}
				return
			}
			want, werr := parseTarget(first)
			if (err == nil) != (werr == nil) || (tg == nil) != (want == nil) || (tg != nil && !sameTarget(tg, want)) {
				t.Fatalf("target list % X: %+v, %v; parseTarget: %+v, %v", first, tg, err, want, werr)
			}
		case 2:
			data := bytes.Repeat([]byte{0x5A}, int(outLen)%(3*maxDataOut+10))
			for i := range data {
				data[i] = byte(i)
			}
			out, err := d.inDataExchange(ctx, 1, data, time.Now().Add(time.Second))
			checkErr(err)
			checkDataExchange(t, chip, data, out, err)
		case 3:
			here, err := d.present(ctx)
			checkErr(err)
			if ok := firstOK && len(first) > 0; (err == nil) != ok || (ok && here != (first[0]&statusCode == 0)) {
				t.Fatalf("Diagnose answer % X: %v, %v", first, here, err)
			}
		case 4:
			err := d.inRelease(ctx, 1)
			checkErr(err)
			ok := firstOK && len(first) > 0 && first[0]&statusCode == 0
			if (err == nil) != ok {
				t.Fatalf("InRelease answer % X: %v", first, err)
			}
			var se *StatusError
			if errors.As(err, &se) && (se.Cmd != cmdInRelease || se.Code != first[0]&statusCode || se.Code == 0) {
				t.Fatalf("InRelease answer % X: %v", first, err)
			}
		case 5:
			st, rest, err := d.inCommunicateThru(ctx, []byte{0x26})
			checkErr(err)
			ok := firstOK && len(first) > 0
			if (err == nil) != ok || (ok && (st != first[0] || !bytes.Equal(rest, first[1:]))) {
				t.Fatalf("InCommunicateThru answer % X: %02X % X, %v", first, st, rest, err)
			}
		}
	})
}

// checkDataExchange checks one inDataExchange against what the chip was
// sent and answered.
func checkDataExchange(t *testing.T, chip *scriptChip, data, out []byte, err error) {
	t.Helper()
	// The commands: the data in parts, then empty ones asking for more.
	var sent []byte
	parts := 0
	for i, w := range chip.written {
		if len(w) < 3 || w[0] != hostTFI || w[1] != cmdInDataExchange || w[2]&^statusMI != 1 {
			t.Fatalf("command %d: % X is not an InDataExchange to target 1", i, w)
		}
		if len(w)-3 > maxDataOut {
			t.Fatalf("command %d carries %d bytes", i, len(w)-3)
		}
		if len(sent) < len(data) || (len(data) == 0 && i == 0) {
			sent = append(sent, w[3:]...)
			parts++
			last := len(sent) >= len(data)
			if (w[2]&statusMI == 0) != last {
				t.Fatalf("command %d: MI %v with %d of %d bytes sent", i, w[2]&statusMI != 0, len(sent), len(data))
			}
		} else if len(w) != 3 || w[2] != 1 {
			t.Fatalf("command %d: % X asks for more with data", i, w)
		}
	}
	if err == nil && (!bytes.Equal(sent, data) || len(chip.written) != len(chip.given)) {
		t.Fatalf("sent % X for % X in %d commands, %d answers", sent, data, len(chip.written), len(chip.given))
	}
	// The answers: a status each; the data of those after the last part
	// sent, chained with MI.
	var joined []byte
	for i, g := range chip.given {
		if len(g) == 0 {
			if err == nil || !errors.Is(err, ErrFrame) || i != len(chip.given)-1 {
				t.Fatalf("answer %d without a status: %v", i, err)
			}
			return
		}
		if code := g[0] & statusCode; code != 0 {
			var se *StatusError
			if !errors.As(err, &se) || se.Code != code || se.Cmd != cmdInDataExchange || i != len(chip.given)-1 {
				t.Fatalf("answer %d with status %02X: %v", i, g[0], err)
			}
			return
		}
		if i >= parts-1 {
			joined = append(joined, g[1:]...)
			if more := g[0]&statusMI != 0; more == (i == len(chip.given)-1) && err == nil {
				t.Fatalf("answer %d: MI %v, yet the exchange ended after %d answers", i, more, len(chip.given))
			}
		}
	}
	if err != nil {
		return
	}
	if !bytes.Equal(out, joined) {
		t.Fatalf("answer % X, want % X", out, joined)
	}
	if len(out) > maxResponse+maxDataOut {
		t.Fatalf("answer of %d bytes", len(out))
	}
}

// streamPort is a serial port that delivers a byte stream in reads of the
// given sizes, then io.EOF.
type streamPort struct {
	b     []byte
	sizes []byte
}

func (p *streamPort) Read(b []byte) (int, error) {
	if len(p.b) == 0 {
		return 0, io.EOF
	}
	n := len(p.b)
	if len(p.sizes) > 0 {
		n = int(p.sizes[0])
		p.sizes = p.sizes[1:]
	}
	n = min(n, len(b), len(p.b))
	copy(b, p.b[:n])
	p.b = p.b[n:]
	return n, nil
}

func (p *streamPort) Write(b []byte) (int, error)        { return len(b), nil }
func (p *streamPort) SetReadTimeout(time.Duration) error { return nil }
func (p *streamPort) ResetInputBuffer() error            { return nil }

// FuzzUARTStream feeds a byte stream, in reads of fuzzed sizes, to the HSU
// transport's frame reader: every frame it returns has a whole header and
// ends at its DCS, the frames come from the stream in order, and each call
// either returns a frame or an error (no endless loop).
func FuzzUARTStream(f *testing.F) {
	f.Add(cat(ack, fwResp), []byte{3, 1, 64})
	f.Add(cat(hx("00 00"), ack, hx("55 00 FF"), fwResp, nack), []byte{})
	f.Add(cat(hx("00 00 FF FF FF 01 09 F6 D5 41 40"), rep(0xA5, 262), hx("CC 00")), []byte{1, 2, 3})
	f.Add(hx("00 00 FF 01 FF 7F 81 00 00 00 FF 06 FB D5 03"), []byte{})
	f.Add(hx("00 00 FF 00 00 00 FF FF FF 00 00 00"), []byte{2})
	f.Fuzz(func(t *testing.T, stream, sizes []byte) {
		for i := range sizes {
			sizes[i] = max(sizes[i], 1)
		}
		u := &uart{p: &streamPort{b: stream, sizes: sizes}}
		pos := 0
		for range len(stream) + 1 {
			frame, err := u.readFrame(context.Background(), time.Now().Add(time.Hour))
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrFrame) && !errors.Is(err, ErrChecksum) {
					t.Fatalf("error %v", err)
				}
				return
			}
			h, err := parseHeader(frame)
			if err != nil || h.end != len(frame) {
				t.Fatalf("frame % X: header %+v, %v", frame, h, err)
			}
			i := bytes.Index(stream[pos:], frame)
			if i < 0 {
				t.Fatalf("frame % X is not in the rest of the stream % X", frame, stream[pos:])
			}
			pos += i + len(frame)
			if _, _, err := decodeFrame(frame); err != nil && !errors.Is(err, ErrChecksum) {
				t.Fatalf("frame % X: %v", frame, err)
			}
		}
		t.Fatalf("more frames than bytes in % X", stream)
	})
}
