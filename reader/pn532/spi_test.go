package pn532

import (
	"context"
	"errors"
	"testing"
	"time"

	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spitest"
)

// modePort records the mode the driver asks for.
type modePort struct {
	spitest.Playback
	mode spi.Mode
}

func (p *modePort) Connect(f physic.Frequency, mode spi.Mode, bits int) (spi.Conn, error) {
	p.mode = mode
	return p.Playback.Connect(f, mode, bits)
}

func newSPI(t *testing.T, o Options, traffic []conntest.IO) (*Dev, *modePort) {
	t.Helper()
	p := &modePort{Playback: spitest.Playback{Playback: conntest.Playback{Ops: traffic, DontPanic: true}}}
	d, err := NewSPI(p, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return d, p
}

// The Raspberry Pi shifts MSB first: every byte on the wire is the PN532's
// byte with its bits reversed (01 → 80, 02 → 40, D4 → 2B, ...).
func TestSPIGetFirmwareVersionBitReversed(t *testing.T) {
	d, p := newSPI(t, DefaultOptions(), []conntest.IO{
		// 01 00 00 FF 02 FE D4 02 2A 00
		{W: hx("80 00 00 FF 40 7F 2B 40 54 00")},
		// status read 02 00 → xx 01
		{W: hx("40 00"), R: hx("00 80")},
		// data read 03 + 6: ACK (its bytes read the same reversed)
		{W: hx("C0 00 00 00 00 00 00"), R: hx("00 00 00 FF 00 FF 00")},
		{W: hx("40 00"), R: hx("00 00")}, // busy
		{W: hx("40 00"), R: hx("00 80")},
		// header 00 00 FF 06 FA D5 03 32
		{W: hx("C0 00 00 00 00 00 00 00 00"), R: hx("00 00 00 FF 60 5F AB C0 4C")},
		// 01 + NACK
		{W: hx("80 00 00 FF FF 00 00")},
		{W: hx("40 00"), R: hx("00 80")},
		// 00 00 FF 06 FA D5 03 32 01 06 07 E8 00
		{W: hx("C0 00 00 00 00 00 00 00 00 00 00 00 00 00"), R: hx("00 00 00 FF 60 5F AB C0 4C 80 60 E0 17 00")},
	})
	if p.mode != spi.Mode0 {
		t.Errorf("mode %v, want Mode0 (MSB first, reversed in software)", p.mode)
	}
	fw, err := d.getFirmwareVersion(context.Background())
	if err != nil || fw.String() != "PN532 v1.6" {
		t.Fatalf("got %v, %v", fw, err)
	}
}

func TestSPISAMConfigurationLSBFirst(t *testing.T) {
	o := DefaultOptions()
	o.BitReverse = false
	d, p := newSPI(t, o, []conntest.IO{
		{W: hx("01 00 00 FF 05 FB D4 14 01 14 01 02 00")},
		{W: hx("02 00"), R: hx("00 01")},
		{W: hx("03 00 00 00 00 00 00"), R: hx("00 00 00 FF 00 FF 00")},
		{W: hx("02 00"), R: hx("00 01")},
		{W: hx("03 00 00 00 00 00 00 00 00"), R: hx("00 00 00 FF 02 FE D5 15 16")},
	})
	if p.mode != spi.Mode0|spi.LSBFirst {
		t.Errorf("mode %v, want Mode0|LSBFirst", p.mode)
	}
	if err := d.samConfiguration(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// With the IRQ line wired there are no status reads. A chip that stays busy
// times out; the driver aborts with an ACK and the next command works.
func TestSPITimeoutRecovered(t *testing.T) {
	irq := &fakeIRQ{busy: true}
	o := DefaultOptions()
	o.BitReverse = false
	o.IRQ = irq
	o.Timeout = 20 * time.Millisecond
	d, _ := newSPI(t, o, []conntest.IO{
		{W: cat(hx("01"), fwCmd)},
		{W: hx("01 00 00 FF 00 FF 00")}, // ACK: abort
		{W: cat(hx("01"), fwCmd)},
		{W: hx("03 00 00 00 00 00 00"), R: cat(hx("00"), ack)},
		{W: hx("03 00 00 00 00 00 00 00 00"), R: cat(hx("00"), fwResp[:8])},
		{W: cat(hx("01"), nack)},
		{W: cat(hx("03"), rep(0, 13)), R: cat(hx("00"), fwResp)},
	})
	if _, err := d.getFirmwareVersion(context.Background()); !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	irq.setBusy(false)
	if _, err := d.getFirmwareVersion(context.Background()); err != nil {
		t.Fatal(err)
	}
}
