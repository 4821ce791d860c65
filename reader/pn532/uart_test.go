package pn532

import (
	"context"
	"errors"
	"testing"
	"time"
)

var (
	samCmd  = hx("00 00 FF 05 FB D4 14 01 14 01 02 00")
	samResp = hx("00 00 FF 02 FE D5 15 16 00")
	rfResp  = hx("00 00 FF 02 FE D5 33 F8 00")
)

// The first command after power-up follows the HSU wake-up preamble; the
// initialisation is SAMConfiguration, GetFirmwareVersion, RFConfiguration
// of MaxRetries (item 05) and timings (item 02).
func TestUARTInitWakesTheChip(t *testing.T) {
	u := &scriptUART{t: t, steps: []uartStep{
		{cat(hx("55 55 00 00 00 00 00 00 00 00 00 00 00 00 00 00"), samCmd), cat(ack, samResp)},
		{fwCmd, cat(ack, fwResp)},
		// MxRtyATR FF, MxRtyPSL 01, MxRtyPassiveActivation 00
		{hx("00 00 FF 06 FA D4 32 05 FF 01 00 F5 00"), cat(ack, rfResp)},
		// RFU 00, ATR_RES timeout 0B, fRetryTimeout 0A (51.2 ms)
		{hx("00 00 FF 06 FA D4 32 02 00 0B 0A E3 00"), cat(ack, rfResp)},
	}}
	d, err := NewUART(u, &Options{MaxRetries: 0x00})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.init(context.Background()); err != nil {
		t.Fatal(err)
	}
	u.done()
	h := d.Health()
	if !h.OK || h.Firmware != "PN532 v1.6" || h.ECP || h.Recoveries != 0 {
		t.Errorf("health %+v", h)
	}
}

func TestUARTGetFirmwareVersion(t *testing.T) {
	u := &scriptUART{t: t, steps: []uartStep{
		// The chip's bytes may arrive with noise between frames.
		{cat(wakePreamble, fwCmd), cat(ack, hx("00 00"), fwResp)},
	}}
	d, err := NewUART(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := d.getFirmwareVersion(context.Background())
	if err != nil || fw.String() != "PN532 v1.6" {
		t.Fatalf("got %v, %v", fw, err)
	}
	u.done()
}

// A chip that does not answer times out: the driver aborts with an ACK,
// drops what it received, and the next command works.
func TestUARTTimeoutRecovered(t *testing.T) {
	u := &scriptUART{t: t, steps: []uartStep{
		{cat(wakePreamble, fwCmd), nil},
		{ack, nil},
		{fwCmd, cat(ack, fwResp)},
	}}
	d, err := NewUART(u, &Options{Timeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.getFirmwareVersion(context.Background()); !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	if _, err := d.getFirmwareVersion(context.Background()); err != nil {
		t.Fatal(err)
	}
	u.done()
	if u.flushes == 0 {
		t.Error("the input was not flushed after the timeout")
	}
}

// A NACK makes the driver send the command again; a corrupted response is
// answered with a NACK, and the good copy is accepted.
func TestUARTNACKAndChecksumRecovered(t *testing.T) {
	u := &scriptUART{t: t, steps: []uartStep{
		{cat(wakePreamble, fwCmd), nack},
		{fwCmd, cat(ack, hx("00 00 FF 06 FA D5 03 32 01 06 07 E9 00"))},
		{nack, fwResp},
	}}
	d, err := NewUART(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.getFirmwareVersion(context.Background()); err != nil {
		t.Fatal(err)
	}
	u.done()
}

// A context that ends aborts the command.
func TestUARTCancel(t *testing.T) {
	u := &scriptUART{t: t, steps: []uartStep{
		{cat(wakePreamble, fwCmd), ack},
		{ack, nil},
	}}
	d, err := NewUART(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := d.getFirmwareVersion(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want context.DeadlineExceeded", err)
	}
	u.done()
}
