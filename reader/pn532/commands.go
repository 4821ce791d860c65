package pn532

import (
	"context"
	"fmt"
	"time"
)

// Command codes (UM0701-02 chapter 7).
const (
	cmdDiagnose            = 0x00
	cmdGetFirmwareVersion  = 0x02
	cmdSAMConfiguration    = 0x14
	cmdPowerDown           = 0x16
	cmdRFConfiguration     = 0x32
	cmdInDataExchange      = 0x40
	cmdInCommunicateThru   = 0x42
	cmdInListPassiveTarget = 0x4A
	cmdInRelease           = 0x52
)

func cmdName(cmd byte) string {
	switch cmd {
	case cmdDiagnose:
		return "Diagnose"
	case cmdGetFirmwareVersion:
		return "GetFirmwareVersion"
	case cmdSAMConfiguration:
		return "SAMConfiguration"
	case cmdPowerDown:
		return "PowerDown"
	case cmdRFConfiguration:
		return "RFConfiguration"
	case cmdInDataExchange:
		return "InDataExchange"
	case cmdInCommunicateThru:
		return "InCommunicateThru"
	case cmdInListPassiveTarget:
		return "InListPassiveTarget"
	case cmdInRelease:
		return "InRelease"
	}
	return fmt.Sprintf("command 0x%02X", cmd)
}

// RFConfiguration items.
const (
	rfField       = 0x01 // RF field on or off
	rfTimings     = 0x02 // ATR_RES timeout, fRetryTimeout
	rfMaxRetries  = 0x05 // MxRtyATR, MxRtyPSL, MxRtyPassiveActivation
	atrResTimeout = 0x0B // 102.4 ms, the chip's default
)

// Status byte bits of InDataExchange.
const (
	statusMI   = 0x40 // More Information: the data continues (also set in Tg)
	statusCode = 0x3F // error code
)

// maxDataOut is the longest DataOut of one InDataExchange (and the longest
// DataIn of one answer).
const maxDataOut = 262

// samConfiguration puts the chip in normal mode (no SAM), with the IRQ line
// in use.
func (d *Dev) samConfiguration(ctx context.Context) error {
	_, err := d.command(ctx, cmdSAMConfiguration, 0x01, 0x14, 0x01)
	return err
}

// firmware is the answer to GetFirmwareVersion.
type firmware struct {
	ic, ver, rev, support byte
}

func (f firmware) String() string { return fmt.Sprintf("PN5%02X v%d.%d", f.ic, f.ver, f.rev) }

func (d *Dev) getFirmwareVersion(ctx context.Context) (firmware, error) {
	r, err := d.command(ctx, cmdGetFirmwareVersion)
	if err != nil {
		return firmware{}, err
	}
	if len(r) != 4 {
		return firmware{}, fmt.Errorf("pn532: GetFirmwareVersion: %w: %d bytes", ErrFrame, len(r))
	}
	return firmware{r[0], r[1], r[2], r[3]}, nil
}

func (d *Dev) rfConfiguration(ctx context.Context, item byte, data ...byte) error {
	_, err := d.command(ctx, cmdRFConfiguration, append([]byte{item}, data...)...)
	return err
}

// status returns the error for a non-zero status byte.
func status(cmd, s byte) error {
	if s&statusCode != 0 {
		return &StatusError{Cmd: cmd, Code: s & statusCode}
	}
	return nil
}

// inListPassiveTarget looks for one 106 kbps type A target and activates
// it (with RATS when its SAK announces ISO/IEC 14443-4). It returns nil when
// none answered.
func (d *Dev) inListPassiveTarget(ctx context.Context) (*Target, error) {
	r, err := d.command(ctx, cmdInListPassiveTarget, 0x01, 0x00)
	if err != nil {
		return nil, err
	}
	t, err := parseTarget(r)
	if err != nil {
		return nil, fmt.Errorf("pn532: InListPassiveTarget: %w", err)
	}
	return t, nil
}

// inDataExchange sends data to target tg through the chip's ISO/IEC 14443-4
// layer and returns the answer. Data longer than one command goes in parts
// with the MI bit set in Tg on all but the last; an answer with the MI bit
// set in its status continues, and is fetched with an InDataExchange
// without data.
func (d *Dev) inDataExchange(ctx context.Context, tg byte, data []byte, deadline time.Time) ([]byte, error) {
	for len(data) > maxDataOut {
		r, err := d.exchange(ctx, cmdInDataExchange, append([]byte{tg | statusMI}, data[:maxDataOut]...), deadline)
		if err != nil {
			return nil, err
		}
		if len(r) < 1 {
			return nil, fmt.Errorf("pn532: InDataExchange: %w: no status", ErrFrame)
		}
		if err := status(cmdInDataExchange, r[0]); err != nil {
			return nil, err
		}
		data = data[maxDataOut:]
	}
	params := append([]byte{tg}, data...)
	var out []byte
	for {
		r, err := d.exchange(ctx, cmdInDataExchange, params, deadline)
		if err != nil {
			return nil, err
		}
		if len(r) < 1 {
			return nil, fmt.Errorf("pn532: InDataExchange: %w: no status", ErrFrame)
		}
		if err := status(cmdInDataExchange, r[0]); err != nil {
			return nil, err
		}
		out = append(out, r[1:]...)
		if r[0]&statusMI == 0 {
			return out, nil
		}
		if len(out) > maxResponse {
			return nil, fmt.Errorf("pn532: InDataExchange: %w: answer longer than %d bytes", ErrFrame, maxResponse)
		}
		params = []byte{tg}
	}
}

// maxResponse bounds a chained answer.
const maxResponse = 64 << 10

// inCommunicateThru sends a raw frame (the chip adds the CRC) and returns
// the status byte and the target's answer.
func (d *Dev) inCommunicateThru(ctx context.Context, data []byte) (byte, []byte, error) {
	r, err := d.command(ctx, cmdInCommunicateThru, data...)
	if err != nil {
		return 0, nil, err
	}
	if len(r) < 1 {
		return 0, nil, fmt.Errorf("pn532: InCommunicateThru: %w: no status", ErrFrame)
	}
	return r[0], r[1:], nil
}

// present asks the chip whether the activated ISO/IEC 14443-4 target still
// answers (Diagnose, test 0x06: card presence detection).
func (d *Dev) present(ctx context.Context) (bool, error) {
	r, err := d.command(ctx, cmdDiagnose, 0x06)
	if err != nil {
		return false, err
	}
	if len(r) < 1 {
		return false, fmt.Errorf("pn532: Diagnose: %w: no status", ErrFrame)
	}
	return r[0]&statusCode == 0, nil
}

// inRelease releases target tg (0 for all).
func (d *Dev) inRelease(ctx context.Context, tg byte) error {
	r, err := d.command(ctx, cmdInRelease, tg)
	if err != nil {
		return err
	}
	if len(r) < 1 {
		return fmt.Errorf("pn532: InRelease: %w: no status", ErrFrame)
	}
	return status(cmdInRelease, r[0])
}

// powerDown puts the chip to sleep; any host interface (I2C, SPI, HSU)
// wakes it up.
func (d *Dev) powerDown(ctx context.Context) error {
	r, err := d.command(ctx, cmdPowerDown, 0xB0)
	if err != nil {
		return err
	}
	d.t.wake()
	if len(r) < 1 {
		return fmt.Errorf("pn532: PowerDown: %w: no status", ErrFrame)
	}
	return status(cmdPowerDown, r[0])
}
