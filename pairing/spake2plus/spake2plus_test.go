package spake2plus

import (
	"bytes"
	"errors"
	"testing"

	"filippo.io/nistec"

	"github.com/dkvehicled/dkvehicled/internal/vectortest"
)

type rfcVector struct {
	Suite      string         `json:"suite"`
	Context    string         `json:"Context"`
	IDProver   string         `json:"idProver"`
	IDVerifier string         `json:"idVerifier"`
	W0         vectortest.Hex `json:"w0"`
	W1         vectortest.Hex `json:"w1"`
	L          vectortest.Hex `json:"L"`
	X          vectortest.Hex `json:"x"`
	ShareP     vectortest.Hex `json:"shareP"`
	Y          vectortest.Hex `json:"y"`
	ShareV     vectortest.Hex `json:"shareV"`
	Z          vectortest.Hex `json:"Z"`
	V          vectortest.Hex `json:"V"`
	TT         vectortest.Hex `json:"TT"`
	KMain      vectortest.Hex `json:"K_main"`
	KConfirmP  vectortest.Hex `json:"K_confirmP"`
	KConfirmV  vectortest.Hex `json:"K_confirmV"`
	ConfirmP   vectortest.Hex `json:"confirmP"`
	ConfirmV   vectortest.Hex `json:"confirmV"`
	KShared    vectortest.Hex `json:"K_shared"`
}

func eq(t *testing.T, name string, got []byte, want vectortest.Hex) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got  %x\n want %x", name, got, []byte(want))
	}
}

// TestRFC9383 reproduces every value of the RFC's appendix C vectors, on both
// sides, for both suites.
func TestRFC9383(t *testing.T) {
	var f struct {
		M       vectortest.Hex `json:"M"`
		N       vectortest.Hex `json:"N"`
		Vectors []rfcVector    `json:"vectors"`
	}
	vectortest.Load(t, "spake2plus_rfc9383.json", &f)
	eq(t, "M", M(), f.M)
	eq(t, "N", N(), f.N)
	if len(f.Vectors) != 2 {
		t.Fatalf("%d vectors", len(f.Vectors))
	}
	for _, v := range f.Vectors {
		t.Run(v.Suite, func(t *testing.T) {
			p := Params{Context: []byte(v.Context), IDProver: []byte(v.IDProver), IDVerifier: []byte(v.IDVerifier)}
			switch v.Suite {
			case "P256-SHA256-HKDF-SHA256-CMAC-AES-128":
				p.MAC = CMAC
			case "P256-SHA256-HKDF-SHA256-HMAC-SHA256":
				p.MAC = HMAC
			default:
				t.Fatalf("suite %s", v.Suite)
			}
			l, err := L(v.W1)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "L", l, v.L)
			prover, err := NewProver(p, v.W0, v.W1, v.X)
			if err != nil {
				t.Fatal(err)
			}
			verifier, err := NewVerifier(p, v.W0, v.L, v.Y)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "shareP", prover.Share(), v.ShareP)
			eq(t, "shareV", verifier.Share(), v.ShareV)
			rv, err := verifier.Finish(prover.Share())
			if err != nil {
				t.Fatal(err)
			}
			rp, err := prover.Finish(verifier.Share())
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []*Result{rv, rp} {
				eq(t, "Z", r.Z, v.Z)
				eq(t, "V", r.V, v.V)
				eq(t, "TT", r.TT, v.TT)
				eq(t, "K_main", r.KMain.Expose(), v.KMain)
				eq(t, "K_confirmP", r.KConfirmP.Expose(), v.KConfirmP)
				eq(t, "K_confirmV", r.KConfirmV.Expose(), v.KConfirmV)
				eq(t, "confirmP", r.ConfirmP, v.ConfirmP)
				eq(t, "confirmV", r.ConfirmV, v.ConfirmV)
				eq(t, "K_shared", r.KShared.Expose(), v.KShared)
			}
			if rv.CheckConfirmP(rp.ConfirmP) != nil || rp.CheckConfirmV(rv.ConfirmV) != nil {
				t.Fatal("confirmations do not check")
			}
		})
	}
}

func TestWrongPasswordAndBadShares(t *testing.T) {
	p := Params{Context: []byte("test")}
	w0a, w1a, _, _ := Password([]byte("12345678"), []byte("salt"), 1024, 8, 1)
	w0b, w1b, _, _ := Password([]byte("12345679"), []byte("salt"), 1024, 8, 1)
	la, _ := L(w1a)
	x := bytes.Repeat([]byte{0x11}, 32)
	y := bytes.Repeat([]byte{0x22}, 32)
	prover, _ := NewProver(p, w0b, w1b, x)
	verifier, _ := NewVerifier(p, w0a, la, y)
	rv, err := verifier.Finish(prover.Share())
	if err != nil {
		t.Fatal(err)
	}
	rp, _ := prover.Finish(verifier.Share())
	if !errors.Is(rv.CheckConfirmP(rp.ConfirmP), ErrConfirmation) || !errors.Is(rp.CheckConfirmV(rv.ConfirmV), ErrConfirmation) {
		t.Fatal("wrong password confirmed")
	}
	bad := append([]byte(nil), prover.Share()...)
	bad[64] ^= 1
	for name, share := range map[string][]byte{
		"off curve": bad, "zero": append([]byte{4}, make([]byte, 64)...), "short": bad[:33], "identity": {0},
	} {
		if _, err := verifier.Finish(share); !errors.Is(err, ErrBadShare) {
			t.Errorf("%s share: %v", name, err)
		}
	}
	// A share equal to w0·M leaves the identity once unblinded: Z would be
	// the identity, whatever y.
	w0M, _ := nistec.NewP256Point().ScalarMult(mPoint, w0a)
	if _, err := verifier.Finish(w0M.Bytes()); !errors.Is(err, ErrBadShare) {
		t.Errorf("share w0·M: %v", err)
	}
}

func FuzzVerifierFinish(f *testing.F) {
	w0, w1, _, _ := Password([]byte("12345678"), []byte("salt"), 1024, 8, 1)
	l, _ := L(w1)
	prover, _ := NewProver(Params{}, w0, w1, bytes.Repeat([]byte{0x11}, 32))
	f.Add(prover.Share())
	f.Add([]byte{4})
	f.Fuzz(func(t *testing.T, x []byte) {
		v, _ := NewVerifier(Params{}, w0, l, bytes.Repeat([]byte{0x22}, 32))
		if _, err := v.Finish(x); err == nil && (len(x) != 65 || x[0] != 4) {
			t.Fatalf("accepted share %x", x)
		}
	})
}
