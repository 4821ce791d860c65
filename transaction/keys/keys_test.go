package keys

import (
	"bytes"
	"errors"
	"testing"
)

func TestNewEphemeralRedrawsInvalidScalars(t *testing.T) {
	valid := bytes.Repeat([]byte{0x11}, 32)
	order := []byte{ // n, the group order: not a valid scalar
		0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
	}
	r := bytes.NewReader(append(append(make([]byte, 32), order...), valid...))
	k, err := NewEphemeral(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.Bytes(), valid) || r.Len() != 0 {
		t.Fatalf("took %x, %d bytes left", k.Bytes(), r.Len())
	}
	if _, err := NewEphemeral(bytes.NewReader(make([]byte, 10))); err == nil {
		t.Fatal("short randomness accepted")
	}
}

func TestParsePointRejects(t *testing.T) {
	k, _ := NewSigningKey(bytes.NewReader(bytes.Repeat([]byte{0x22}, 32)))
	good := EncodePoint(&k.PublicKey)
	if _, err := ParsePoint(good); err != nil {
		t.Fatal(err)
	}
	offCurve := append([]byte(nil), good...)
	offCurve[64] ^= 1
	for name, b := range map[string][]byte{
		"off curve":    offCurve,
		"zero":         append([]byte{4}, make([]byte, 64)...),
		"identity":     {0},
		"compressed":   append([]byte{2}, good[1:33]...),
		"wrong prefix": append([]byte{6}, good[1:]...),
	} {
		if _, err := ParsePoint(b); !errors.Is(err, ErrBadPoint) {
			t.Errorf("%s accepted: %v", name, err)
		}
		if _, err := ParseVerifyingKey(b); !errors.Is(err, ErrBadPoint) {
			t.Errorf("%s accepted as a verifying key: %v", name, err)
		}
	}
}

func TestSignIsDeterministicAndVerifies(t *testing.T) {
	k, _ := SigningKey(bytes.Repeat([]byte{0x33}, 32))
	a, err := Sign(k, []byte("msg"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Sign(k, []byte("msg"))
	if !bytes.Equal(a, b) || len(a) != 64 {
		t.Fatal("RFC 6979 signatures differ")
	}
	if !Verify(&k.PublicKey, []byte("msg"), a) || Verify(&k.PublicKey, []byte("msh"), a) || Verify(&k.PublicKey, []byte("msg"), a[:63]) {
		t.Fatal("Verify wrong")
	}
}

func TestKeyIDRoundTrip(t *testing.T) {
	id := KeyIDOf([]byte{4, 1, 2})
	back, err := ParseKeyID(id.String())
	if err != nil || back != id {
		t.Fatal(err)
	}
	if _, err := ParseKeyID("zz"); err == nil {
		t.Fatal("bad id accepted")
	}
}
