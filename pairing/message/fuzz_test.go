package message

import (
	"bytes"
	"reflect"
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

// FuzzRoundTrip is FuzzParse with exact equality: every message that parses
// re-encodes to one that parses to the very same message, and the single
// values of ShareX and ConfirmP are what the input carries under their tag.
func FuzzRoundTrip(f *testing.F) {
	sel := Select{FrameworkVersions: []wire.Version{0x0100, 0x0200}, AppletVersions: []byte{1, 0}, Ready: 2}.Encode()
	req := Request{Version: 0x0100, AppletVersions: []byte{1, 0}, Scrypt: Scrypt{Salt: make([]byte, 16), N: 4096, R: 8, P: 1}, Brand: []byte{0, 1}}.Encode()
	kc := KeyCreation{VehicleIdentifier: make([]byte, 8), VehicleCert: []byte{0x30, 0}, Intermediate: []byte{0x30, 1, 2}, AuthorizedPK: append([]byte{4}, make([]byte, 64)...),
		OwnerSlot: make([]byte, 8), AppletVersions: []byte{1, 0}, Layout: wire.DefaultLayout}.Encode()
	cr := Created{EndpointCert: []byte{1}, InstanceCA: []byte{2}, DeviceCA: []byte{3}, Signature: make([]byte, 64)}.Encode()
	ver := Verify{ShareY: append([]byte{4}, make([]byte, 64)...), ConfirmV: make([]byte, 16)}.Encode()
	for _, s := range [][]byte{sel, req, kc, cr, ver, append([]byte{0x50, 0x41, 4}, make([]byte, 64)...), append([]byte{0x58, 0x10}, make([]byte, 16)...)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		same := func(name string, a, b any, err error) {
			t.Helper()
			if err != nil || !reflect.DeepEqual(a, b) {
				t.Fatalf("%s: %+v re-parses as %+v, %v", name, a, b, err)
			}
		}
		if m, err := ParseSelect(b); err == nil {
			m2, err := ParseSelect(m.Encode())
			same("SELECT", m, m2, err)
		}
		if m, err := ParseRequest(b); err == nil {
			m2, err := ParseRequest(m.Encode())
			same("REQUEST", m, m2, err)
		}
		if m, err := ParseVerify(b); err == nil {
			m2, err := ParseVerify(m.Encode())
			same("VERIFY", m, m2, err)
		}
		if m, err := ParseKeyCreation(b); err == nil {
			m2, err := ParseKeyCreation(m.Encode())
			same("WRITE DATA", m, m2, err)
		}
		if m, err := ParseCreated(b); err == nil {
			m2, err := ParseCreated(m.Encode())
			same("GET DATA", m, m2, err)
		}
		for _, c := range []struct {
			parse func([]byte) ([]byte, error)
			tag   byte
			n     int
		}{{ParseShareX, 0x50, wire.PointLen}, {ParseConfirmP, 0x58, 16}} {
			v, err := c.parse(b)
			if err != nil {
				continue
			}
			if len(v) != c.n || !bytes.Contains(b, append([]byte{c.tag, byte(c.n)}, v...)) {
				t.Fatalf("%x: value %x under tag %02X", b, v, c.tag)
			}
		}
	})
}
