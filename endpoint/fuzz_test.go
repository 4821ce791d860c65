package endpoint

import (
	"bytes"
	"context"
	"testing"

	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

func fuzzPhone(t testing.TB) *Phone {
	p := New(wire.CCC, []wire.Version{0x0100}, wire.DefaultLayout, bytes.NewReader(bytes.Repeat([]byte{0x42}, 4096)))
	vk, _ := keys.SigningKey(bytes.Repeat([]byte{0x21}, 32))
	if _, err := p.NewOwnerKey([]byte("VEHICLE1"), keys.EncodePoint(&vk.PublicKey), nil, []byte{1, 2, 3, 4, 5, 6, 7, 8}); err != nil {
		t.Fatal(err)
	}
	return p
}

// FuzzPhoneCommand sends SELECT and then an arbitrary command: the phone
// answers something or refuses to answer, and never panics.
func FuzzPhoneCommand(f *testing.F) {
	for _, s := range []string{
		"80800101635c020100874104", "80810000429e40", "84c9000018", "803c0100", "00c0000000", "90800000",
	} {
		f.Add([]byte(s))
	}
	sel := append([]byte{0x00, 0xA4, 0x04, 0x00, byte(len(wire.CCC.AppletAID))}, append(wire.CCC.AppletAID, 0)...)
	f.Fuzz(func(t *testing.T, c []byte) {
		p := fuzzPhone(t)
		if _, err := p.Transceive(context.Background(), sel); err != nil {
			t.Fatal(err)
		}
		r, err := p.Transceive(context.Background(), c)
		if err == nil && len(r) < 2 {
			t.Fatalf("answer of %d bytes", len(r))
		}
	})
}

func FuzzLoad(f *testing.F) {
	saved, err := fuzzPhone(f).Save()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(saved)
	f.Add([]byte(`{"profile":"ccc","versions":["0100"],"layout":{"SlotIDLen":8,"TokenLen":16,"OEMDataLen":32,"AttestationLen":512},"keys":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Load(b, bytes.NewReader(nil))
		if err != nil {
			return
		}
		if _, err := p.Save(); err != nil {
			t.Fatalf("loaded phone does not save: %v", err)
		}
	})
}
