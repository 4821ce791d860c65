package endpoint

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/pairing/message"

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

// fuzzPairingPhone is a phone with a device PKI (an instance CA that also
// stands in for the device OEM CA) whose owner typed a pairing password.
func fuzzPairingPhone(t testing.TB) *Phone {
	p := fuzzPhone(t)
	ca, _ := keys.SigningKey(bytes.Repeat([]byte{0x33}, 32))
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "instance CA"},
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC),
		SignatureAlgorithm: x509.ECDSAWithSHA256, BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, &ca.PublicKey, ca)
	if err != nil {
		t.Fatal(err)
	}
	p.SetDevicePKI(&DevicePKI{InstanceCA: ca, InstanceCACert: der, DeviceCACert: der})
	p.SetPairingPassword("12345678")
	return p
}

// fuzzMaxScryptN keeps the fuzzed REQUESTs cheap enough to run by the
// thousand; the phone itself accepts up to maxScryptN.
const fuzzMaxScryptN = 1 << 12

// FuzzFrameworkCommands selects the pairing framework of a phone ready to
// pair and sends it a sequence of arbitrary commands (each a length byte
// and that many bytes). Every command that is an APDU gets a response with
// a status word; without the password nobody gets through SPAKE2+, so the
// phone installs no key and keeps its password; and at the next tap the
// applet still answers SELECT.
func FuzzFrameworkCommands(f *testing.F) {
	seq := func(cmds ...[]byte) []byte {
		var b []byte
		for _, c := range cmds {
			b = append(append(b, byte(len(c))), c...)
		}
		return b
	}
	cmd := func(cla, ins, p1, p2 byte, data []byte) []byte {
		b, _ := apdu.Command{CLA: cla, INS: ins, P1: p1, P2: p2, Data: data, Ne: 256}.Bytes()
		return b
	}
	req := message.Request{Version: wire.FrameworkVersion, AppletVersions: []byte{1, 0}, Scrypt: message.Scrypt{Salt: make([]byte, 16), N: 4096, R: 8, P: 1}, Brand: []byte{0, 1}}.Encode()
	ver := message.Verify{ShareY: append([]byte{4}, make([]byte, 64)...), ConfirmV: make([]byte, 16)}.Encode()
	f.Add(seq(cmd(0x80, wire.INSSpakeRequest, 0, 0, req), cmd(0x80, wire.INSSpakeVerify, 0, 0, ver)))
	f.Add(seq(cmd(0x80, wire.INSSpakeVerify, 0, 0, ver), cmd(0x84, wire.INSWriteData, 0, 0, make([]byte, 40))))
	f.Add(seq(cmd(0x84, wire.INSGetData, wire.GetDataP1, wire.GetDataP2, make([]byte, 16)), cmd(0x80, wire.INSControl, 1, 0, nil)))
	f.Add(seq(cmd(0x90, wire.INSSpakeRequest, 0, 0, req[:10]), cmd(0x80, wire.INSSpakeRequest, 0, 0, req[10:])))
	f.Add(seq([]byte{0x00, 0xC0, 0x00, 0x00, 0x00}, []byte{0x80}))
	sel := append([]byte{0x00, 0xA4, 0x04, 0x00, byte(len(wire.FrameworkAID))}, wire.FrameworkAID...)
	selApplet := append([]byte{0x00, 0xA4, 0x04, 0x00, byte(len(wire.CCC.AppletAID))}, wire.CCC.AppletAID...)
	f.Fuzz(func(t *testing.T, script []byte) {
		p := fuzzPairingPhone(t)
		keysBefore := len(p.Keys())
		ctx := context.Background()
		if r, err := p.Transceive(ctx, sel); err != nil || !bytes.HasSuffix(r, []byte{0x90, 0x00}) {
			t.Fatalf("SELECT framework: %x, %v", r, err)
		}
		var chained []byte
		for b := script; len(b) > 0; {
			n := min(int(b[0]), len(b)-1)
			c := b[1 : 1+n]
			b = b[1+n:]
			parsed, perr := apdu.ParseCommand(c)
			if perr == nil && parsed.CLA&0x10 != 0 {
				chained = append(chained, parsed.Data...)
			} else if perr == nil {
				// Keep the scrypt work of a (possibly chained) REQUEST small.
				if r, err := message.ParseRequest(append(chained, parsed.Data...)); err == nil && parsed.INS == wire.INSSpakeRequest &&
					(r.Scrypt.N > fuzzMaxScryptN || r.Scrypt.R > 8 || r.Scrypt.P > 1) {
					return
				}
				chained = nil
			}
			r, err := p.Transceive(ctx, c)
			if perr != nil {
				if !errors.Is(err, ErrNoResponse) {
					t.Fatalf("%x is no APDU, yet: %x, %v", c, r, err)
				}
				continue
			}
			if err != nil || len(r) < 2 {
				t.Fatalf("%x: %x, %v", c, r, err)
			}
		}
		if len(p.Keys()) != keysBefore || p.password != "12345678" {
			t.Fatal("pairing completed without the password")
		}
		// The next tap (a command chain left open ends with the field).
		p.Reset()
		if r, err := p.Transceive(ctx, selApplet); err != nil || !bytes.HasSuffix(r, []byte{0x90, 0x00}) {
			t.Fatalf("SELECT applet at the next tap: %x, %v", r, err)
		}
	})
}
