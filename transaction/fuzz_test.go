package transaction

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/internal/vectortest"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// recordedAnswers returns the data part of every recorded answer to the
// command with instruction ins, across the positive and negative vectors.
func recordedAnswers(f *testing.F, ins byte) [][]byte {
	var out [][]byte
	dir := vectortest.Dir(f)
	for _, name := range []string{"ccc_fast.json", "ccc_standard.json", "ccc_engine_start.json", "ccc_friend_first_use.json", "ccc_negative.json", "homekey_standard.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			f.Fatal(err)
		}
		var any map[string]json.RawMessage
		if err := json.Unmarshal(b, &any); err != nil {
			f.Fatal(err)
		}
		var seqs []struct {
			APDUSequence []vectortest.APDU `json:"apdu_sequence"`
		}
		var cases []struct {
			Transaction struct {
				APDUSequence []vectortest.APDU `json:"apdu_sequence"`
			} `json:"transaction"`
		}
		_ = json.Unmarshal(any["transactions"], &seqs)
		_ = json.Unmarshal(any["cases"], &cases)
		for _, c := range cases {
			seqs = append(seqs, struct {
				APDUSequence []vectortest.APDU `json:"apdu_sequence"`
			}{c.Transaction.APDUSequence})
		}
		for _, s := range seqs {
			for _, x := range s.APDUSequence {
				if len(x.C) > 1 && x.C[1] == ins && len(x.R) >= 2 {
					out = append(out, x.R[:len(x.R)-2])
				}
			}
		}
	}
	if len(out) == 0 {
		f.Fatalf("no recorded answers to INS %02X", ins)
	}
	return out
}

func FuzzSelectResponse(f *testing.F) {
	for _, r := range recordedAnswers(f, wire.INSSelect) {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		list, vs, err := parseSelect(data)
		if err != nil {
			return
		}
		if len(vs) == 0 || len(list) != 2*len(vs) {
			t.Fatalf("%d versions from a %d-byte list", len(vs), len(list))
		}
	})
}

func FuzzAuth0Response(f *testing.F) {
	for _, r := range recordedAnswers(f, wire.INSAuth0) {
		f.Add(r, true)
		f.Add(r, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, fast bool) {
		epk, crypt, err := parseAuth0(data, fast)
		if err != nil {
			return
		}
		if _, err := keys.ParsePoint(epk); err != nil {
			t.Fatalf("accepted an invalid point: %v", err)
		}
		if fast != (len(crypt) == wire.CryptogramLen) || (!fast && crypt != nil) {
			t.Fatalf("fast %v with a cryptogram of %d bytes", fast, len(crypt))
		}
	})
}

func FuzzAuth1Plaintext(f *testing.F) {
	f.Add(apdu.AppendTLV(apdu.EncodeTLV(wire.TagIdentifier, make([]byte, 8)), wire.TagSignature, make([]byte, 64)))
	f.Add(apdu.AppendTLV(apdu.EncodeTLV(wire.TagIdentifier, make([]byte, 6)), wire.TagSignature, make([]byte, 64)))
	f.Add([]byte{0x4e, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x4e, 0x08})
	f.Fuzz(func(t *testing.T, plain []byte) {
		ident, sig, err := parseAuth1(plain)
		if err != nil {
			return
		}
		if len(sig) != wire.SignatureLen || !bytes.Contains(plain, ident) {
			t.Fatalf("identifier %x / signature of %d bytes", ident, len(sig))
		}
	})
}
