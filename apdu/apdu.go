// Package apdu encodes and decodes ISO 7816-4 short APDUs and the strict BER-TLV
// subset of PROTOCOL.md section 1, and runs one command over a Transceiver with
// GET RESPONSE, 6Cxx and command chaining.
package apdu

import (
	"errors"
	"fmt"
)

// Status words used by the protocol.
const (
	SWOK                 uint16 = 0x9000
	SWWrongLength        uint16 = 0x6700
	SWSecurityNotSatisf  uint16 = 0x6982
	SWConditionsNotSatis uint16 = 0x6985
	SWWrongData          uint16 = 0x6A80
	SWFileNotFound       uint16 = 0x6A82
	SWIncorrectP1P2      uint16 = 0x6A86
	SWReferencedDataNF   uint16 = 0x6A88
	SWINSNotSupported    uint16 = 0x6D00
	SWCLANotSupported    uint16 = 0x6E00
	SWNotReadyForPairing uint16 = 0x9484
)

// MaxShortData is the largest data field of a short command APDU.
const MaxShortData = 255

// ErrMalformed reports bytes that are not a valid APDU.
var ErrMalformed = errors.New("apdu: malformed")

// Command is a short command APDU. Ne is the expected response length: 0 means
// no Le field, 1..256 is sent as Le (256 as 00).
type Command struct {
	CLA, INS, P1, P2 byte
	Data             []byte
	Ne               int
}

// Bytes encodes the command. It fails for data longer than 255 bytes (use
// Transmit, which chains) or an Ne outside 0..256.
func (c Command) Bytes() ([]byte, error) {
	if len(c.Data) > MaxShortData {
		return nil, fmt.Errorf("apdu: %d data bytes do not fit a short APDU", len(c.Data))
	}
	if c.Ne < 0 || c.Ne > 256 {
		return nil, fmt.Errorf("apdu: Ne %d out of range", c.Ne)
	}
	b := make([]byte, 0, 6+len(c.Data))
	b = append(b, c.CLA, c.INS, c.P1, c.P2)
	if len(c.Data) > 0 {
		b = append(b, byte(len(c.Data)))
		b = append(b, c.Data...)
	}
	if c.Ne > 0 {
		b = append(b, byte(c.Ne)) // 256 wraps to 00
	}
	return b, nil
}

// String shows the header and sizes, never the data (it may be protected
// secure-channel data, but it is still not log material).
func (c Command) String() string {
	return fmt.Sprintf("%02X %02X %02X %02X (%d data bytes, Ne %d)", c.CLA, c.INS, c.P1, c.P2, len(c.Data), c.Ne)
}

// ParseCommand decodes a short command APDU of any of the four ISO cases. A
// trailing Le is optional wherever it may appear, so a command with or without
// it parses to the same header and data.
func ParseCommand(b []byte) (Command, error) {
	if len(b) < 4 {
		return Command{}, fmt.Errorf("%w: command of %d bytes", ErrMalformed, len(b))
	}
	c := Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3]}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
	case len(body) == 1: // case 2
		c.Ne = neFromLe(body[0])
	default:
		lc := int(body[0])
		if lc == 0 {
			return Command{}, fmt.Errorf("%w: extended length APDUs are not supported", ErrMalformed)
		}
		switch len(body) {
		case 1 + lc: // case 3
		case 2 + lc: // case 4
			c.Ne = neFromLe(body[1+lc])
		default:
			return Command{}, fmt.Errorf("%w: Lc %d with %d body bytes", ErrMalformed, lc, len(body))
		}
		c.Data = body[1 : 1+lc]
	}
	return c, nil
}

func neFromLe(le byte) int {
	if le == 0 {
		return 256
	}
	return int(le)
}

// Response is a response APDU: data and status word.
type Response struct {
	Data []byte
	SW   uint16
}

// ParseResponse splits a response APDU into data and status word.
func ParseResponse(b []byte) (Response, error) {
	if len(b) < 2 {
		return Response{}, fmt.Errorf("%w: response of %d bytes", ErrMalformed, len(b))
	}
	n := len(b) - 2
	return Response{Data: b[:n], SW: uint16(b[n])<<8 | uint16(b[n+1])}, nil
}

// Bytes encodes the response.
func (r Response) Bytes() []byte {
	b := make([]byte, 0, len(r.Data)+2)
	b = append(b, r.Data...)
	return append(b, byte(r.SW>>8), byte(r.SW))
}

// OK reports status 90 00.
func (r Response) OK() bool { return r.SW == SWOK }

// Status returns a response that carries only a status word.
func Status(sw uint16) []byte { return []byte{byte(sw >> 8), byte(sw)} }
