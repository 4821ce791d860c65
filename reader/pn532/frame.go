package pn532

import "fmt"

// Frame identifiers (TFI) and sizes.
const (
	hostTFI = 0xD4 // host to PN532
	chipTFI = 0xD5 // PN532 to host

	// maxFrameData is the longest frame data the chip handles: TFI, command
	// code, one parameter byte (Tg or status) and 262 bytes of data.
	maxFrameData = 265
	// maxNormalData is the longest data of a normal frame; longer data goes
	// in an extended frame.
	maxNormalData = 255
)

var (
	ackFrame  = []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00}
	nackFrame = []byte{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00}
)

var (
	errShort   = fmt.Errorf("%w: truncated", ErrFrame)
	errNoStart = fmt.Errorf("%w: no start code", ErrFrame)
)

type frameKind int

const (
	kindInfo  frameKind = iota // information frame: TFI, command code, data
	kindACK                    // 00 00 FF 00 FF 00
	kindNACK                   // 00 00 FF FF 00 00
	kindError                  // 00 00 FF 01 FF 7F 81 00
)

// encodeFrame wraps data (TFI, command code, parameters) in a normal frame,
// or an extended frame when it is longer than 255 bytes.
func encodeFrame(data []byte) ([]byte, error) {
	n := len(data)
	if n == 0 || n > maxFrameData {
		return nil, fmt.Errorf("%w: %d data bytes", ErrFrame, n)
	}
	f := make([]byte, 0, n+10)
	f = append(f, 0x00, 0x00, 0xFF)
	if n <= maxNormalData {
		f = append(f, byte(n), -byte(n))
	} else {
		hi, lo := byte(n>>8), byte(n)
		f = append(f, 0xFF, 0xFF, hi, lo, -(hi + lo))
	}
	f = append(f, data...)
	return append(f, -sum(data), 0x00), nil
}

func sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// header locates a frame in a buffer that starts with the frame's preamble.
type header struct {
	kind frameKind // kindInfo for every frame with data
	data int       // offset of the first data byte
	n    int       // number of data bytes
	end  int       // offset just past the DCS (past the LCS for ACK and NACK)
}

// parseHeader reads the preamble, start code and length of the frame at the
// start of b, checking the length checksum. It needs b to hold the whole
// header; errShort says that more bytes are needed.
func parseHeader(b []byte) (header, error) {
	i := 0
	for i < len(b) && b[i] == 0x00 {
		i++
	}
	switch {
	case i == len(b):
		return header{}, errShort
	case i == 0 || b[i] != 0xFF:
		return header{}, errNoStart
	}
	p := i + 1 // LEN
	if len(b) < p+2 {
		return header{}, errShort
	}
	ln, lcs := b[p], b[p+1]
	h := header{kind: kindInfo}
	switch {
	case ln == 0x00 && lcs == 0xFF:
		return header{kind: kindACK, end: p + 2}, nil
	case ln == 0xFF && lcs == 0x00:
		return header{kind: kindNACK, end: p + 2}, nil
	case ln == 0xFF && lcs == 0xFF:
		if len(b) < p+5 {
			return header{}, errShort
		}
		if b[p+2]+b[p+3]+b[p+4] != 0 {
			return header{}, fmt.Errorf("%w: extended length checksum", ErrChecksum)
		}
		h.n, h.data = int(b[p+2])<<8|int(b[p+3]), p+5
	default:
		if ln+lcs != 0 {
			return header{}, fmt.Errorf("%w: length checksum", ErrChecksum)
		}
		h.n, h.data = int(ln), p+2
	}
	if h.n == 0 || h.n > maxFrameData {
		return header{}, fmt.Errorf("%w: length %d", ErrFrame, h.n)
	}
	h.end = h.data + h.n + 1
	return h, nil
}

// decodeFrame decodes the frame at the start of b (the postamble is not
// needed). For an information frame it returns the data: TFI, command code
// and parameters.
func decodeFrame(b []byte) (frameKind, []byte, error) {
	h, err := parseHeader(b)
	if err != nil {
		return 0, nil, err
	}
	if len(b) < h.end {
		return 0, nil, errShort
	}
	if h.kind != kindInfo {
		return h.kind, nil, nil
	}
	data := b[h.data : h.data+h.n]
	if sum(data)+b[h.end-1] != 0 {
		return 0, nil, fmt.Errorf("%w: data checksum", ErrChecksum)
	}
	if h.n == 1 && data[0] == 0x7F {
		return kindError, nil, nil
	}
	return kindInfo, append([]byte(nil), data...), nil
}
