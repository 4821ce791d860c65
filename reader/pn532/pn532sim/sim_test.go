package pn532sim

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/spi"
)

func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// Frames written out by hand from UM0701-02's frame format.
var (
	ack     = hx("00 00 FF 00 FF 00")
	nack    = hx("00 00 FF FF 00 00")
	fwCmd   = hx("00 00 FF 02 FE D4 02 2A 00")
	fwResp  = hx("00 00 FF 06 FA D5 03 32 01 06 07 E8 00")
	listCmd = hx("00 00 FF 04 FC D4 4A 01 00 E1 00")
)

// i2cRead reads n bytes (ready byte included) from the chip.
func i2cRead(t *testing.T, c *Chip, n int) []byte {
	t.Helper()
	r := make([]byte, n)
	if err := c.I2C().Tx(0x24, nil, r); err != nil {
		t.Fatal(err)
	}
	return r
}

func i2cWrite(t *testing.T, c *Chip, w []byte) {
	t.Helper()
	if err := c.I2C().Tx(0x24, w, nil); err != nil {
		t.Fatal(err)
	}
}

func expect(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s: % X, want % X", what, got, want)
	}
}

func TestI2C(t *testing.T) {
	c := New()
	expect(t, "idle status", i2cRead(t, c, 1), hx("00"))
	i2cWrite(t, c, fwCmd)
	expect(t, "status", i2cRead(t, c, 1), hx("01"))
	expect(t, "ACK", i2cRead(t, c, 7), cat(hx("01"), ack))
	expect(t, "header", i2cRead(t, c, 9), hx("01 00 00 FF 06 FA D5 03 32"))
	i2cWrite(t, c, nack)
	expect(t, "response", i2cRead(t, c, 15), cat(hx("01"), fwResp, hx("00")))
	expect(t, "status after", i2cRead(t, c, 1), hx("00"))
	if err := c.I2C().Tx(0x48, nil, make([]byte, 1)); err == nil {
		t.Error("a read at another address succeeded")
	}
}

func TestInListPassiveTarget(t *testing.T) {
	c := New()
	i2cWrite(t, c, listCmd)
	i2cRead(t, c, 7)
	expect(t, "empty field", i2cRead(t, c, 11), cat(hx("01"), hx("00 00 FF 03 FD D5 4B 00 E0 00")))
	c.Place(func(context.Context, []byte) ([]byte, error) { return hx("90 00"), nil })
	i2cWrite(t, c, listCmd)
	i2cRead(t, c, 7)
	expect(t, "phone", i2cRead(t, c, 25), cat(hx("01"), hx("00 00 FF 11 EF D5 4B 01 01 00 04 20 04 08 12 34 56 05 78 80 70 02 A3 00")))
	// InDataExchange with Tg 1 and 00 B0.
	i2cWrite(t, c, hx("00 00 FF 05 FB D4 40 01 00 B0 3B 00"))
	i2cRead(t, c, 7)
	expect(t, "answer", i2cRead(t, c, 13), cat(hx("01"), hx("00 00 FF 05 FB D5 41 00 90 00 5A 00")))
	c.Remove()
	i2cWrite(t, c, hx("00 00 FF 05 FB D4 40 01 00 B0 3B 00"))
	i2cRead(t, c, 7)
	expect(t, "gone", i2cRead(t, c, 11), cat(hx("01"), hx("00 00 FF 03 FD D5 41 01 E9 00")))
}

func TestFaults(t *testing.T) {
	c := New()
	c.Fail(NACK)
	i2cWrite(t, c, fwCmd)
	expect(t, "NACK", i2cRead(t, c, 7), cat(hx("01"), nack))
	c.Fail(BadChecksum)
	i2cWrite(t, c, fwCmd)
	i2cRead(t, c, 7)
	expect(t, "corrupted", i2cRead(t, c, 14), cat(hx("01"), hx("00 00 FF 06 FA D5 03 32 01 06 07 E9 00")))
	i2cWrite(t, c, nack)
	expect(t, "good copy", i2cRead(t, c, 14), cat(hx("01"), fwResp))
	c.Fail(Silent)
	i2cWrite(t, c, fwCmd)
	expect(t, "silent", i2cRead(t, c, 1), hx("00"))
	if err := c.ResetPin().Out(false); err != nil {
		t.Fatal(err)
	}
	i2cWrite(t, c, fwCmd)
	expect(t, "after reset", i2cRead(t, c, 7), cat(hx("01"), ack))
}

// The chip shifts LSB first; a controller without spi.LSBFirst sees every
// byte reversed.
func TestSPIReversed(t *testing.T) {
	conn, err := New().SPI().Connect(0, spi.Mode0, 8)
	if err != nil {
		t.Fatal(err)
	}
	// 01 + GetFirmwareVersion, reversed.
	if err := conn.Tx(hx("80 00 00 FF 40 7F 2B 40 54 00"), nil); err != nil {
		t.Fatal(err)
	}
	r := make([]byte, 2)
	if err := conn.Tx(hx("40 00"), r); err != nil {
		t.Fatal(err)
	}
	expect(t, "status", r, hx("00 80"))
	r = make([]byte, 7)
	if err := conn.Tx(hx("C0 00 00 00 00 00 00"), r); err != nil {
		t.Fatal(err)
	}
	expect(t, "ACK", r, hx("00 00 00 FF 00 FF 00"))
	r = make([]byte, 14)
	if err := conn.Tx(make([]byte, 14), r); err == nil {
		t.Error("a transfer without prefix was accepted")
	}
	copy(r, hx("C0"))
	w := make([]byte, 14)
	w[0] = 0xC0
	if err := conn.Tx(w, r); err != nil {
		t.Fatal(err)
	}
	expect(t, "response", r, hx("00 00 00 FF 60 5F AB C0 4C 80 60 E0 17 00"))
}

// In HSU mode the chip sleeps until the wake-up preamble.
func TestUARTPreamble(t *testing.T) {
	u := New().UART()
	if err := u.SetReadTimeout(5 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := u.Write(fwCmd); err != nil {
		t.Fatal(err)
	}
	if n, _ := u.Read(buf); n != 0 {
		t.Fatalf("a sleeping chip answered % X", buf[:n])
	}
	if _, err := u.Write(cat(hx("55 55 00 00 00 00 00 00 00 00 00 00 00 00 00 00"), fwCmd)); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for {
		n, err := u.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		got = append(got, buf[:n]...)
	}
	expect(t, "answer", got, cat(ack, fwResp))
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
