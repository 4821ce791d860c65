package pki_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dkvehicled/dkvehicled/internal/pki"
	"github.com/dkvehicled/dkvehicled/pairing/spake2plus"
)

const validSalt = "000102030405060708090a0b0c0d0e0f"

// validVerifier is the verifier file of password 12345678 with salt 00..0f
// and N = 4096, as a map to be spoiled field by field.
func validVerifier(t testing.TB) map[string]any {
	salt, _ := hex.DecodeString(validSalt)
	w0, w1, _, err := spake2plus.Password([]byte("12345678"), salt, 4096, 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	l, err := spake2plus.L(w1)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"w0": hex.EncodeToString(w0.Expose()), "L": hex.EncodeToString(l), "salt": validSalt, "n": 4096, "r": 8, "p": 1}
}

func encode(t testing.TB, m map[string]any) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifierFile(t *testing.T) {
	v, err := pki.NewVerifier(rand.Reader, "12345678", 8192)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.W0) != 32 || len(v.L) != 65 || len(v.Salt) != 16 || v.N != 8192 || v.R != 8 || v.P != 1 {
		t.Fatalf("verifier: %d %d %d %d %d %d", len(v.W0), len(v.L), len(v.Salt), v.N, v.R, v.P)
	}
	w0, w1, _, _ := spake2plus.Password([]byte("12345678"), v.Salt, v.N, v.R, v.P)
	l, _ := spake2plus.L(w1)
	if !v.W0.Equal(w0) || !bytes.Equal(v.L, l) {
		t.Fatal("w0 or L is not the password's")
	}
	if s := fmt.Sprintf("%v %+v %#v", v, v, v); strings.Contains(s, hex.EncodeToString(v.W0)[:16]) || strings.Contains(s, hex.EncodeToString(v.L)[2:18]) {
		t.Fatalf("a verifier prints its secrets: %s", s)
	}
	path := filepath.Join(t.TempDir(), "verifier.json")
	if err := pki.WriteVerifier(path, v); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("verifier file: %v %v", st.Mode(), err)
	}
	if err := pki.WriteVerifier(path, v); err == nil {
		t.Fatal("a verifier file was overwritten")
	}
	got, err := pki.ReadVerifier(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.W0.Equal(v.W0) || !got.L.Equal(v.L) || !bytes.Equal(got.Salt, v.Salt) || got.N != v.N || got.R != v.R || got.P != v.P {
		t.Fatal("the verifier changed in its file")
	}
	k := got.Keystore(7)
	if !k.W0.Equal(v.W0) || !k.L.Equal(v.L) || !bytes.Equal(k.Salt, v.Salt) || k.N != v.N || k.R != 8 || k.P != 1 || k.AttemptsLeft != 7 {
		t.Fatalf("keystore verifier %+v", k)
	}
	k.W0[0] ^= 1
	if !got.W0.Equal(v.W0) {
		t.Fatal("the keystore verifier shares w0")
	}
	if _, err := pki.ReadVerifier(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("read a missing file")
	}

	for _, c := range []struct {
		password string
		n        int
	}{{"1234567", 4096}, {"123456789", 4096}, {"1234567a", 4096}, {"12345678", 2048}, {"12345678", 6144}, {"12345678", 1 << 21}} {
		if _, err := pki.NewVerifier(rand.Reader, c.password, c.n); err == nil {
			t.Errorf("NewVerifier(%q, %d) succeeded", c.password, c.n)
		} else if strings.Contains(err.Error(), c.password) {
			t.Errorf("error names the password: %v", err)
		}
	}
}

func TestParseVerifier(t *testing.T) {
	good := validVerifier(t)
	v, err := pki.ParseVerifier(encode(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(v.W0) != good["w0"] || v.N != 4096 {
		t.Fatal("parsed verifier differs")
	}
	w0, l := good["w0"].(string), good["L"].(string)
	compressed := "03" + l[2:66]
	order := "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"
	for _, c := range []struct {
		name  string
		field string
		value any // nil: delete the field
	}{
		{"no w0", "w0", nil},
		{"no L", "L", nil},
		{"no salt", "salt", nil},
		{"no n", "n", nil},
		{"no r", "r", nil},
		{"no p", "p", nil},
		{"w0 not hex", "w0", "zz" + w0[2:]},
		{"w0 short", "w0", w0[2:]},
		{"w0 long", "w0", w0 + "00"},
		{"w0 zero", "w0", strings.Repeat("0", 64)},
		{"w0 the order", "w0", order},
		{"w0 above the order", "w0", strings.Repeat("f", 64)},
		{"w0 a number", "w0", 5},
		{"L compressed", "L", compressed},
		{"L short", "L", l[:128]},
		{"L off the curve", "L", l[:128] + "00"},
		{"L not hex", "L", "x" + l[1:]},
		{"L null", "L", json.RawMessage("null")},
		{"salt short", "salt", validSalt[2:]},
		{"salt long", "salt", validSalt + "00"},
		{"salt not hex", "salt", "g" + validSalt[1:]},
		{"n small", "n", 2048},
		{"n not a power of two", "n", 6144},
		{"n large", "n", 1 << 21},
		{"n negative", "n", -4096},
		{"n a string", "n", "4096"},
		{"n fractional", "n", 4096.5},
		{"r", "r", 16},
		{"p", "p", 2},
		{"unknown field", "w1", w0},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := validVerifier(t)
			if c.value == nil {
				delete(m, c.field)
			} else {
				m[c.field] = c.value
			}
			_, err := pki.ParseVerifier(encode(t, m))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, s := range []string{w0[:16], w0[2:18], l[2:18], "zz"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error %q quotes the input", err)
				}
			}
		})
	}
	for _, b := range []string{"", "{", "[]", `"w0"`, "null", string(encode(t, good)) + "{}", string(encode(t, good)) + "x" + good["w0"].(string)} {
		if _, err := pki.ParseVerifier([]byte(b)); err == nil {
			t.Errorf("%q accepted", b)
		} else if strings.Contains(err.Error(), good["w0"].(string)[:16]) {
			t.Errorf("error %q quotes w0", err)
		}
	}
}

// FuzzParseVerifier: ParseVerifier never panics, never quotes w0 or L in an
// error, and what it accepts it writes back unchanged. The seeds are in
// testdata/fuzz/FuzzParseVerifier.
func FuzzParseVerifier(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := pki.ParseVerifier(b)
		if err != nil {
			var m map[string]any
			json.Unmarshal(b, &m)
			for _, k := range []string{"w0", "L"} {
				if s, ok := m[k].(string); ok && len(s) >= 8 && strings.Contains(err.Error(), s) {
					t.Fatalf("error %q quotes %s", err, k)
				}
			}
			return
		}
		path := filepath.Join(t.TempDir(), "v.json")
		if err := pki.WriteVerifier(path, v); err != nil {
			t.Fatal(err)
		}
		w, err := pki.ReadVerifier(path)
		if err != nil {
			t.Fatalf("written verifier does not read back: %v", err)
		}
		if !w.W0.Equal(v.W0) || !w.L.Equal(v.L) || !bytes.Equal(w.Salt, v.Salt) || w.N != v.N || w.R != v.R || w.P != v.P {
			t.Fatal("the verifier changed")
		}
	})
}
