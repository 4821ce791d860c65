package apdu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// Transceiver sends one raw command APDU to a card and returns its raw
// response. Implementations honour the context's deadline and cancellation.
type Transceiver interface {
	Transceive(ctx context.Context, command []byte) ([]byte, error)
}

// TransceiverFunc adapts a function to a Transceiver.
type TransceiverFunc func(ctx context.Context, command []byte) ([]byte, error)

// Transceive calls f.
func (f TransceiverFunc) Transceive(ctx context.Context, command []byte) ([]byte, error) {
	return f(ctx, command)
}

// maxResponse bounds the data joined from GET RESPONSE parts, so a card that
// keeps answering 61 xx cannot grow memory without limit.
const maxResponse = 64 << 10

// ErrChaining reports a card that broke the rules of chaining or GET RESPONSE.
var ErrChaining = errors.New("apdu: chaining failed")

// Transmit sends cmd over t. Data longer than 255 bytes goes out with command
// chaining (CLA | 10 on every part but the last; each answered 90 00). A
// response 6C xx repeats the command with Le = xx; 61 xx is followed by
// GET RESPONSE until the final status, and the data parts are joined.
func Transmit(ctx context.Context, t Transceiver, cmd Command) (Response, error) {
	data := cmd.Data
	for len(data) > MaxShortData {
		part := Command{CLA: cmd.CLA | 0x10, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2, Data: data[:MaxShortData]}
		r, err := send(ctx, t, part)
		if err != nil {
			return Response{}, err
		}
		if !r.OK() {
			return r, nil
		}
		data = data[MaxShortData:]
	}
	last := cmd
	last.Data = data
	r, err := send(ctx, t, last)
	if err != nil {
		return Response{}, err
	}
	if r.SW>>8 == 0x6C {
		last.Ne = neFromLe(byte(r.SW))
		if r, err = send(ctx, t, last); err != nil {
			return Response{}, err
		}
	}
	if r.SW>>8 != 0x61 {
		return r, nil
	}
	var joined bytes.Buffer
	joined.Write(r.Data)
	for r.SW>>8 == 0x61 {
		get := Command{CLA: 0x00, INS: 0xC0, Ne: neFromLe(byte(r.SW))}
		if r, err = send(ctx, t, get); err != nil {
			return Response{}, err
		}
		if joined.Len()+len(r.Data) > maxResponse {
			return Response{}, fmt.Errorf("%w: response longer than %d bytes", ErrChaining, maxResponse)
		}
		joined.Write(r.Data)
	}
	return Response{Data: joined.Bytes(), SW: r.SW}, nil
}

func send(ctx context.Context, t Transceiver, c Command) (Response, error) {
	raw, err := c.Bytes()
	if err != nil {
		return Response{}, err
	}
	out, err := t.Transceive(ctx, raw)
	if err != nil {
		return Response{}, err
	}
	return ParseResponse(out)
}
