package cmac

import (
	"encoding/hex"
	"testing"

	"github.com/dkvehicled/dkvehicled/internal/vectortest"
)

func TestRFC4493(t *testing.T) {
	var v struct {
		Key     vectortest.Hex `json:"key"`
		Subkeys struct {
			K1 vectortest.Hex `json:"K1"`
			K2 vectortest.Hex `json:"K2"`
		} `json:"subkeys"`
		Examples []struct {
			Length int            `json:"length"`
			Msg    vectortest.Hex `json:"msg"`
			MAC    vectortest.Hex `json:"mac"`
		} `json:"examples"`
	}
	vectortest.Load(t, "cmac_rfc4493.json", &v)
	m, err := New(v.Key)
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := m.Subkeys()
	if hex.EncodeToString(k1[:]) != v.Subkeys.K1.String() || hex.EncodeToString(k2[:]) != v.Subkeys.K2.String() {
		t.Fatalf("subkeys %x %x", k1, k2)
	}
	if len(v.Examples) != 4 {
		t.Fatalf("%d examples", len(v.Examples))
	}
	for _, e := range v.Examples {
		if len(e.Msg) != e.Length {
			t.Fatalf("example length %d != %d", len(e.Msg), e.Length)
		}
		got := m.Sum(e.Msg)
		if hex.EncodeToString(got[:]) != e.MAC.String() {
			t.Errorf("len %d: %x want %s", e.Length, got, e.MAC)
		}
		// The same message split at every point gives the same MAC.
		for cut := 0; cut <= len(e.Msg); cut++ {
			if m.Sum(e.Msg[:cut], e.Msg[cut:]) != got {
				t.Fatalf("len %d: split at %d differs", e.Length, cut)
			}
		}
	}
}

func BenchmarkSum64(b *testing.B) {
	m, _ := New(make([]byte, 16))
	msg := make([]byte, 64)
	for b.Loop() {
		m.Sum(msg)
	}
}
