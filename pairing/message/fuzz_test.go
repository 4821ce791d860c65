package message

import (
	"bytes"
	"testing"

	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

func FuzzParse(f *testing.F) {
	sel := Select{FrameworkVersions: []wire.Version{0x0100}, AppletVersions: []byte{1, 0}, Ready: 2}.Encode()
	req := Request{Version: 0x0100, AppletVersions: []byte{1, 0}, Scrypt: Scrypt{Salt: make([]byte, 16), N: 4096, R: 8, P: 1}, Brand: []byte{0, 1}}.Encode()
	kc := KeyCreation{VehicleIdentifier: make([]byte, 8), VehicleCert: []byte{0x30, 0}, AuthorizedPK: append([]byte{4}, make([]byte, 64)...),
		OwnerSlot: make([]byte, 8), AppletVersions: []byte{1, 0}, Layout: wire.DefaultLayout}.Encode()
	cr := Created{EndpointCert: []byte{1}, InstanceCA: []byte{2}, DeviceCA: []byte{3}, Signature: make([]byte, 64)}.Encode()
	for _, s := range [][]byte{sel, req, kc, cr, {0x50, 0x41}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := ParseSelect(b); err == nil {
			if _, err := ParseSelect(s.Encode()); err != nil {
				t.Fatalf("select re-encodes badly: %v", err)
			}
		}
		if r, err := ParseRequest(b); err == nil {
			if r2, err := ParseRequest(r.Encode()); err != nil || r2.Scrypt.N != r.Scrypt.N || !bytes.Equal(r2.Scrypt.Salt, r.Scrypt.Salt) {
				t.Fatalf("request re-encodes badly: %v", err)
			}
		}
		if k, err := ParseKeyCreation(b); err == nil {
			if k2, err := ParseKeyCreation(k.Encode()); err != nil || !bytes.Equal(k2.OwnerSlot, k.OwnerSlot) || k2.Layout != k.Layout {
				t.Fatalf("key creation re-encodes badly: %v", err)
			}
		}
		if c, err := ParseCreated(b); err == nil {
			if c2, err := ParseCreated(c.Encode()); err != nil || !bytes.Equal(c2.Signature, c.Signature) {
				t.Fatalf("created re-encodes badly: %v", err)
			}
		}
		ParseShareX(b)
		ParseConfirmP(b)
		ParseVerify(b)
	})
}
