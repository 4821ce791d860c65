package securechannel

import (
	"bytes"
	"crypto/cipher"
	"errors"
	"testing"

	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

func pair(t testing.TB, counter int) (vehicle, phone *Channel) {
	k := keys.SessionKeys{Enc: bytes.Repeat([]byte{1}, 16), Mac: bytes.Repeat([]byte{2}, 16), Rmac: bytes.Repeat([]byte{3}, 16)}
	v, err := New(k, counter)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := New(k, counter)
	return v, p
}

func TestRoundTripAndChaining(t *testing.T) {
	v, p := pair(t, 0)
	for i, msg := range [][]byte{nil, {0}, bytes.Repeat([]byte{7}, 15), bytes.Repeat([]byte{8}, 16), bytes.Repeat([]byte{9}, 200)} {
		c, err := v.WrapCommand(msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.UnwrapCommand(c)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("command %d: %x %v", i, got, err)
		}
		r, _ := p.WrapResponse(msg)
		got, err = v.UnwrapResponse(r)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("response %d: %x %v", i, got, err)
		}
	}
	if v.Counter() != 5 || p.Counter() != 5 {
		t.Fatalf("counters %d %d", v.Counter(), p.Counter())
	}
}

func TestReplayedResponseRejected(t *testing.T) {
	v, p := pair(t, 0)
	c, _ := v.WrapCommand([]byte{1})
	p.UnwrapCommand(c)
	r, _ := p.WrapResponse([]byte{2})
	if _, err := v.UnwrapResponse(r); err != nil {
		t.Fatal(err)
	}
	c, _ = v.WrapCommand([]byte{1})
	p.UnwrapCommand(c)
	// The same response again: the chain moved, the MAC no longer fits.
	if _, err := v.UnwrapResponse(r); !errors.Is(err, ErrMAC) {
		t.Fatalf("replayed response: %v", err)
	}
}

func TestBadPaddingAndLength(t *testing.T) {
	v, p := pair(t, 0)
	if _, err := v.UnwrapResponse(make([]byte, 7)); !errors.Is(err, ErrLength) {
		t.Fatal(err)
	}
	if _, err := v.UnwrapResponse(make([]byte, 20)); !errors.Is(err, ErrLength) {
		t.Fatal(err)
	}
	// A response whose MAC is right but whose plaintext has no 80 marker.
	block := bytes.Repeat([]byte{5}, 16)
	ct := make([]byte, 16)
	cipher.NewCBCEncrypter(p.enc, p.icv(0x80)).CryptBlocks(ct, block)
	mac := p.rmac.Sum(p.chain[:], ct)
	if _, err := v.UnwrapResponse(append(ct, mac[:MACLen]...)); !errors.Is(err, ErrPadding) {
		t.Fatalf("bad padding: %v", err)
	}
}

func TestCounterExhausted(t *testing.T) {
	v, _ := pair(t, 256)
	if _, err := v.WrapCommand(nil); !errors.Is(err, ErrCounter) {
		t.Fatal(err)
	}
}

func FuzzUnwrap(f *testing.F) {
	v, p := pair(f, 0)
	c, _ := v.WrapCommand([]byte{0, 0x87, 4, 0, 0, 0, 2})
	r, _ := p.WrapResponse([]byte{0x99, 2, 0, 0})
	f.Add(c)
	f.Add(r)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, d []byte) {
		v, p := pair(t, 0)
		if got, err := v.UnwrapResponse(d); err == nil && !bytes.Equal(d, r) {
			t.Fatalf("forged response %x accepted as %x", d, got)
		}
		if got, err := p.UnwrapCommand(d); err == nil && !bytes.Equal(d, c) {
			t.Fatalf("forged command %x accepted as %x", d, got)
		}
	})
}
