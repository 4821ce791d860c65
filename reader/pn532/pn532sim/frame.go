package pn532sim

var (
	ackFrame   = []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00}
	nackFrame  = []byte{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00}
	errorFrame = []byte{0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00}
)

type kind int

const (
	kindNone kind = iota // incomplete or invalid
	kindInfo
	kindACK
	kindNACK
)

// encode builds a normal frame, or an extended one for more than 255 bytes.
func encode(data []byte) []byte {
	n := len(data)
	f := []byte{0x00, 0x00, 0xFF}
	if n <= 255 {
		f = append(f, byte(n), byte(-n))
	} else {
		f = append(f, 0xFF, 0xFF, byte(n>>8), byte(n), -(byte(n>>8) + byte(n)))
	}
	var dcs byte
	for _, b := range data {
		dcs -= b
	}
	f = append(f, data...)
	return append(f, dcs, 0x00)
}

// parseFrame reads one frame at the start of b and returns its kind, its
// data (TFI onwards) and the number of bytes it used. used is 0 while the
// frame is incomplete; kindNone with used > 0 is garbage to skip.
func parseFrame(b []byte) (k kind, data []byte, used int) {
	i := 0
	for i < len(b) && b[i] == 0x00 {
		i++
	}
	switch {
	case i == len(b):
		return kindNone, nil, 0
	case i == 0 || b[i] != 0xFF:
		return kindNone, nil, i + 1
	}
	p := i + 1 // LEN
	if len(b) < p+2 {
		return kindNone, nil, 0
	}
	ln, lcs := b[p], b[p+1]
	var n, start int
	switch {
	case ln == 0x00 && lcs == 0xFF:
		return kindACK, nil, p + 2
	case ln == 0xFF && lcs == 0x00:
		return kindNACK, nil, p + 2
	case ln == 0xFF && lcs == 0xFF:
		if len(b) < p+5 {
			return kindNone, nil, 0
		}
		if b[p+2]+b[p+3]+b[p+4] != 0 {
			return kindNone, nil, p + 5
		}
		n, start = int(b[p+2])<<8|int(b[p+3]), p+5
	default:
		if ln+lcs != 0 {
			return kindNone, nil, p + 2
		}
		n, start = int(ln), p+2
	}
	end := start + n + 1
	if len(b) < end {
		return kindNone, nil, 0
	}
	var s byte
	for _, c := range b[start:end] {
		s += c
	}
	if s != 0 {
		return kindNone, nil, end
	}
	return kindInfo, b[start : start+n], end
}
