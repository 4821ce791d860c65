package pn532

import (
	"context"
	"errors"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

func TestI2CGetFirmwareVersion(t *testing.T) {
	d := newI2C(t, false, Options{}, []i2ctest.IO{
		{Addr: 0x24, W: hx("00 00 FF 02 FE D4 02 2A 00")},
		{Addr: 0x24, R: hx("01")},
		{Addr: 0x24, R: hx("01 00 00 FF 00 FF 00")}, // ready byte, ACK
		{Addr: 0x24, R: hx("00")},                   // busy
		{Addr: 0x24, R: hx("01")},
		{Addr: 0x24, R: hx("01 00 00 FF 06 FA D5 03 32")}, // the header gives the length
		{Addr: 0x24, W: hx("00 00 FF FF 00 00")},          // NACK: send it again
		{Addr: 0x24, R: hx("01")},
		{Addr: 0x24, R: hx("01 00 00 FF 06 FA D5 03 32 01 06 07 E8 00")},
	})
	fw, err := d.getFirmwareVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if fw.String() != "PN532 v1.6" || fw.support != 0x07 {
		t.Errorf("firmware %v (support %02X), want PN532 v1.6 (07)", fw, fw.support)
	}
}

func TestI2CSAMConfiguration(t *testing.T) {
	d := newI2C(t, false, Options{}, []i2ctest.IO{
		{Addr: 0x24, W: hx("00 00 FF 05 FB D4 14 01 14 01 02 00")},
		{Addr: 0x24, R: hx("01")},
		{Addr: 0x24, R: hx("01 00 00 FF 00 FF 00")},
		{Addr: 0x24, R: hx("01")},
		// The whole response up to its DCS fits the 8 header bytes: no NACK.
		{Addr: 0x24, R: hx("01 00 00 FF 02 FE D5 15 16")},
	})
	if err := d.samConfiguration(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A NACK (or anything but an ACK) after a command makes the driver send the
// command again.
func TestI2CNACKRecovered(t *testing.T) {
	d := newI2C(t, false, Options{}, ops(
		[]i2ctest.IO{
			{Addr: 0x24, W: fwCmd},
			{Addr: 0x24, R: hx("01")},
			{Addr: 0x24, R: hx("01 00 00 FF FF 00 00")}, // NACK
		},
		i2cPolled(fwCmd, fwResp)))
	if _, err := d.getFirmwareVersion(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A response with a wrong checksum is answered with a NACK, and the chip
// sends it again.
func TestI2CChecksumRecovered(t *testing.T) {
	d := newI2C(t, false, Options{}, ops(
		[]i2ctest.IO{
			{Addr: 0x24, W: fwCmd},
			{Addr: 0x24, R: hx("01")},
			{Addr: 0x24, R: cat(hx("01"), ack)},
			{Addr: 0x24, R: hx("01")},
			{Addr: 0x24, R: hx("01 00 00 FF 06 FB D5 03 32")}, // bad LCS
			{Addr: 0x24, W: nack},
			{Addr: 0x24, R: hx("01")},
			{Addr: 0x24, R: hx("01 00 00 FF 06 FA D5 03 32")},
			{Addr: 0x24, W: nack},
			{Addr: 0x24, R: hx("01")},
			{Addr: 0x24, R: hx("01 00 00 FF 06 FA D5 03 32 01 06 07 E9 00")}, // bad DCS
			{Addr: 0x24, W: nack},
		},
		i2cPolled(fwCmd, fwResp)[3:]))
	fw, err := d.getFirmwareVersion(context.Background())
	if err != nil || fw.String() != "PN532 v1.6" {
		t.Fatalf("got %v, %v", fw, err)
	}
}

// A response that stays corrupted is rejected with ErrChecksum, and the
// driver aborts the command with an ACK.
func TestI2CChecksumRejected(t *testing.T) {
	bad := hx("00 00 FF 06 FA D5 03 32 01 06 07 E9 00")
	traffic := i2cPolled(fwCmd, bad)
	for range 2 {
		traffic = append(traffic, i2ctest.IO{Addr: 0x24, W: nack})
		traffic = append(traffic, i2cPolled(fwCmd, bad)[3:]...)
	}
	traffic = append(traffic, i2ctest.IO{Addr: 0x24, W: ack})
	d := newI2C(t, false, Options{}, traffic)
	if _, err := d.getFirmwareVersion(context.Background()); !errors.Is(err, ErrChecksum) {
		t.Fatalf("err %v, want ErrChecksum", err)
	}
}

func TestI2CErrorFrame(t *testing.T) {
	d := newI2C(t, true, Options{}, []i2ctest.IO{
		{Addr: 0x24, W: hx("00 00 FF 03 FD D4 00 07 25 00")}, // Diagnose 07, not something we send
		{Addr: 0x24, R: cat(hx("01"), ack)},
		{Addr: 0x24, R: hx("01 00 00 FF 01 FF 7F 81 00")},
	})
	_, err := d.command(context.Background(), cmdDiagnose, 0x07)
	if !errors.Is(err, ErrApplication) {
		t.Fatalf("err %v, want ErrApplication", err)
	}
}
