package endpoint

import (
	"bytes"
	"context"
	"testing"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/pairing/message"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// TestSpakeRequestScryptParameters: the phone runs scrypt with the
// parameters PROTOCOL.md 6 fixes (r = 8, p = 1) and a bounded N, and refuses
// a REQUEST asking for more work (a vehicle, or a reader posing as one, must
// not be able to keep the phone busy) with 6A 88, before any scrypt work.
func TestSpakeRequestScryptParameters(t *testing.T) {
	sel := append([]byte{0x00, 0xA4, 0x04, 0x00, byte(len(wire.FrameworkAID))}, wire.FrameworkAID...)
	for _, tc := range []struct {
		name    string
		n, r, p int
		want    []byte
	}{
		{"protocol parameters", 4096, 8, 1, []byte{0x90, 0x00}},
		{"r 16", 4096, 16, 1, []byte{0x6A, 0x88}},
		{"r 1", 4096, 1, 1, []byte{0x6A, 0x88}},
		{"p 2", 4096, 8, 2, []byte{0x6A, 0x88}},
		{"p 65535", 4096, 8, 65535, []byte{0x6A, 0x88}},
		{"N over the bound", maxScryptN * 2, 8, 1, []byte{0x6A, 0x88}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fuzzPairingPhone(t)
			ctx := context.Background()
			if r, err := p.Transceive(ctx, sel); err != nil || !bytes.HasSuffix(r, []byte{0x90, 0x00}) {
				t.Fatalf("SELECT framework: %x, %v", r, err)
			}
			req := message.Request{Version: wire.FrameworkVersion, AppletVersions: []byte{1, 0},
				Scrypt: message.Scrypt{Salt: make([]byte, 16), N: tc.n, R: tc.r, P: tc.p}, Brand: []byte{0, 1}}.Encode()
			c, err := apdu.Command{CLA: wire.CLAProp, INS: wire.INSSpakeRequest, Data: req, Ne: 256}.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			r, err := p.Transceive(ctx, c)
			if err != nil || !bytes.HasSuffix(r, tc.want) {
				t.Fatalf("REQUEST N=%d r=%d p=%d: %x, %v; want status %x", tc.n, tc.r, tc.p, r, err, tc.want)
			}
		})
	}
}
