package pn532

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/reader"
)

var (
	listCmd   = hx("00 00 FF 04 FC D4 4A 01 00 E1 00")
	listPhone = hx("00 00 FF 11 EF D5 4B 01 01 00 04 20 04 08 12 34 56 05 78 80 70 02 A3 00")
	listNone  = hx("00 00 FF 03 FD D5 4B 00 E0 00")
)

func TestInListPassiveTarget(t *testing.T) {
	cases := []struct {
		name string
		resp []byte
		want *Target
	}{
		{"phone", listPhone, &Target{Tg: 1, ATQA: 0x0004, SAK: 0x20, UID: hx("08 12 34 56"), ATS: hx("05 78 80 70 02")}},
		// SAK 08 does not announce ISO/IEC 14443-4 and there is no ATS: the
		// target is returned all the same.
		{"SAK 08", hx("00 00 FF 0F F1 D5 4B 01 01 00 44 08 07 04 11 22 33 44 55 66 22 00"), &Target{Tg: 1, ATQA: 0x0044, SAK: 0x08, UID: hx("04 11 22 33 44 55 66")}},
		{"none", listNone, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newI2C(t, true, Options{}, i2cIRQ(listCmd, c.resp))
			got, err := d.inListPassiveTarget(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (c.want == nil) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			if got == nil {
				return
			}
			if got.Tg != c.want.Tg || got.ATQA != c.want.ATQA || got.SAK != c.want.SAK ||
				!bytes.Equal(got.UID, c.want.UID) || !bytes.Equal(got.ATS, c.want.ATS) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
			if got.ISODEP() != (c.want.SAK&0x20 != 0) {
				t.Errorf("ISODEP() = %v for SAK %02X", got.ISODEP(), got.SAK)
			}
		})
	}
}

func TestParseTargetRejectsShortData(t *testing.T) {
	for _, r := range [][]byte{
		nil,
		hx("01 01 00 04 20"),
		hx("01 01 00 04 20 04 08 12"),
		hx("01 01 00 04 20 04 08 12 34 56 05 78"), // ATS shorter than its length byte
	} {
		if _, err := parseTarget(r); !errors.Is(err, ErrFrame) {
			t.Errorf("parseTarget(% X): err %v, want ErrFrame", r, err)
		}
	}
}

// An answer longer than one frame comes in parts: the status byte's MI bit
// says more follows, fetched with an InDataExchange without data. The first
// part, 265 bytes of frame data, comes in an extended frame.
func TestInDataExchangeChainedResponse(t *testing.T) {
	d := newI2C(t, true, Options{}, ops(
		i2cIRQ(hx("00 00 FF 0B F5 D4 40 01 00 A4 04 00 02 A0 00 00 A1 00"),
			cat(hx("00 00 FF FF FF 01 09 F6 D5 41 40"), rep(0xA5, 262), hx("CC 00"))),
		i2cIRQ(hx("00 00 FF 03 FD D4 40 01 EB 00"),
			hx("00 00 FF 0F F1 D5 41 00 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 90 00 D6 00")),
	))
	card := &Card{d: d, target: Target{Tg: 1}}
	d.needInit = false
	got, err := card.Transceive(context.Background(), hx("00 A4 04 00 02 A0 00 00"))
	if err != nil {
		t.Fatal(err)
	}
	if want := cat(rep(0xA5, 262), rep(0x5A, 10), hx("90 00")); !bytes.Equal(got, want) {
		t.Errorf("got %d bytes % X..., want %d", len(got), got[:min(len(got), 8)], len(want))
	}
}

// A command longer than 262 bytes goes in parts, the MI bit set in Tg on
// all but the last; the first part needs an extended frame.
func TestInDataExchangeChainedCommand(t *testing.T) {
	d := newI2C(t, true, Options{}, ops(
		i2cIRQ(cat(hx("00 00 FF FF FF 01 09 F6 D4 40 41"), rep(0x3C, 262), hx("43 00")),
			hx("00 00 FF 03 FD D5 41 00 EA 00")),
		i2cIRQ(cat(hx("00 00 FF 29 D7 D4 40 01"), rep(0x3C, 38), hx("03 00")),
			hx("00 00 FF 05 FB D5 41 00 90 00 5A 00")),
	))
	card := &Card{d: d, target: Target{Tg: 1}}
	d.needInit = false
	got, err := card.Transceive(context.Background(), rep(0x3C, 300))
	if err != nil || !bytes.Equal(got, hx("90 00")) {
		t.Fatalf("got % X, %v", got, err)
	}
}

// A target that stopped answering gives status 01, which is ErrCardGone,
// and leaves the reader healthy.
func TestInDataExchangeCardGone(t *testing.T) {
	d := newI2C(t, true, Options{}, i2cIRQ(
		hx("00 00 FF 05 FB D4 40 01 00 B0 3B 00"),
		hx("00 00 FF 03 FD D5 41 01 E9 00")))
	card := &Card{d: d, target: Target{Tg: 1}}
	d.needInit = false
	_, err := card.Transceive(context.Background(), hx("00 B0"))
	var se *StatusError
	if !errors.Is(err, reader.ErrCardGone) || !errors.As(err, &se) || se.Code != 0x01 {
		t.Fatalf("err %v, want ErrCardGone with status 01", err)
	}
	if h := d.Health(); h.Errors != 0 {
		t.Errorf("health %+v after a card left", h)
	}
}

// A poll cycle probes the chip, sends the ECP frame through
// InCommunicateThru (the phone never answers it: status 01), then polls.
func TestPollOnceSendsECP(t *testing.T) {
	d := newI2C(t, true, Options{ECPFrame: hx("6A 02 C3 02 01 01 AB CD")}, ops(
		i2cIRQ(fwCmd, fwResp),
		i2cIRQ(hx("00 00 FF 0A F6 D4 42 6A 02 C3 02 01 01 AB CD 3F 00"), hx("00 00 FF 03 FD D5 43 01 E7 00")),
		i2cIRQ(listCmd, listPhone),
	))
	d.needInit = false
	tg, err := d.pollOnce(context.Background())
	if err != nil || tg == nil || tg.SAK != 0x20 {
		t.Fatalf("got %+v, %v", tg, err)
	}
	if !d.Health().ECP {
		t.Error("Health().ECP is false with an ECP frame configured")
	}
}

// WaitRemoved checks an ISO-DEP target with Diagnose 06 until it is gone,
// then releases it.
func TestWaitRemovedDiagnose(t *testing.T) {
	d := newI2C(t, true, Options{PollInterval: time.Millisecond}, ops(
		i2cIRQ(hx("00 00 FF 03 FD D4 00 06 26 00"), hx("00 00 FF 03 FD D5 01 00 2A 00")),
		i2cIRQ(hx("00 00 FF 03 FD D4 00 06 26 00"), hx("00 00 FF 03 FD D5 01 01 29 00")),
		i2cIRQ(hx("00 00 FF 03 FD D4 52 01 D9 00"), hx("00 00 FF 03 FD D5 53 00 D8 00")),
	))
	d.needInit = false
	card := &Card{d: d, target: Target{Tg: 1, SAK: 0x20, ATS: hx("05 78 80 70 02")}}
	if err := card.WaitRemoved(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := card.Close(); err != nil { // released already: no traffic
		t.Fatal(err)
	}
}

// A target without ATS is released and looked for again.
func TestWaitRemovedRelist(t *testing.T) {
	tag := hx("00 00 FF 0F F1 D5 4B 01 01 00 44 08 07 04 11 22 33 44 55 66 22 00")
	d := newI2C(t, true, Options{PollInterval: time.Millisecond}, ops(
		i2cIRQ(hx("00 00 FF 03 FD D4 52 01 D9 00"), hx("00 00 FF 03 FD D5 53 00 D8 00")),
		i2cIRQ(listCmd, tag),
		i2cIRQ(hx("00 00 FF 03 FD D4 52 01 D9 00"), hx("00 00 FF 03 FD D5 53 00 D8 00")),
		i2cIRQ(listCmd, listNone),
	))
	d.needInit = false
	card := &Card{d: d, target: Target{Tg: 1, SAK: 0x08, UID: hx("04 11 22 33 44 55 66")}}
	if err := card.WaitRemoved(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Close switches the field off and powers the chip down.
func TestClose(t *testing.T) {
	d := newI2C(t, true, Options{}, ops(
		i2cIRQ(hx("00 00 FF 04 FC D4 32 01 00 F9 00"), rfResp),
		i2cIRQ(hx("00 00 FF 03 FD D4 16 B0 66 00"), hx("00 00 FF 03 FD D5 17 00 14 00")),
	))
	d.needInit = false
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRFTimeoutCode(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		code byte
	}{
		{time.Microsecond, 0x01},
		{100 * time.Microsecond, 0x01},
		{5 * time.Millisecond, 0x07},
		{51200 * time.Microsecond, 0x0A},
		{time.Minute, 0x10},
	} {
		if got := rfTimeoutCode(c.d); got != c.code {
			t.Errorf("rfTimeoutCode(%v) = %02X, want %02X", c.d, got, c.code)
		}
	}
}

// A chip that rejects the ECP frame with an error frame keeps polling
// without it and reports ECP as unsupported.
func TestPollOnceECPRejected(t *testing.T) {
	ecp := hx("00 00 FF 0A F6 D4 42 6A 02 C3 02 01 01 AB CD 3F 00")
	d := newI2C(t, true, Options{ECPFrame: hx("6A 02 C3 02 01 01 AB CD")}, ops(
		i2cIRQ(fwCmd, fwResp),
		i2cIRQ(ecp, hx("00 00 FF 01 FF 7F 81 00")),
		i2cIRQ(listCmd, listNone),
		i2cIRQ(fwCmd, fwResp),
		i2cIRQ(listCmd, listNone),
	))
	d.needInit = false
	for range 2 {
		if tg, err := d.pollOnce(context.Background()); err != nil || tg != nil {
			t.Fatalf("got %+v, %v", tg, err)
		}
	}
	if h := d.Health(); h.ECP || h.Errors != 0 {
		t.Errorf("health %+v, want ECP false and no errors", h)
	}
}
