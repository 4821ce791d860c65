// Package vectortest loads the JSON test vectors of ../shared/vectors (beside
// the repository root) for Go tests, and provides the replay helpers the
// vehicle-side and phone-side tests share: hex fields, injected randomness in
// draw order, and a transceiver that answers recorded APDUs.
package vectortest

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Dir returns the vectors directory: ../shared/vectors relative to the
// repository root, found by walking up from the test's directory to go.mod.
// A missing directory fails the test: the vectors are the contract.
func Dir(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			v := filepath.Join(d, "../shared/vectors")
			if _, err := os.Stat(v); err != nil {
				t.Fatalf("vectors not found beside the repository root: %v", err)
			}
			return v
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", wd)
		}
	}
}

// Load decodes the vector file name into v.
func Load(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// Hex is a byte string written as lower-case hex; JSON null decodes to nil.
type Hex []byte

// UnmarshalJSON implements json.Unmarshaler.
func (h *Hex) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = d
	return nil
}

// MarshalJSON implements json.Marshaler.
func (h Hex) MarshalJSON() ([]byte, error) {
	if h == nil {
		return []byte("null"), nil
	}
	return json.Marshal(hex.EncodeToString(h))
}

// String is the lower-case hex form.
func (h Hex) String() string { return hex.EncodeToString(h) }

// Time parses the vectors' YYYY-MM-DDTHH:MM:SSZ times.
func Time(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return tm
}

// Draw is one injected random value.
type Draw struct {
	Label string `json:"label"`
	Index int    `json:"index"`
	Value Hex    `json:"value"`
}

// Randomness is a side's injected randomness.
type Randomness struct {
	Vehicle  []Draw `json:"vehicle"`
	Endpoint []Draw `json:"endpoint"`
}

// Rand serves injected values in draw order as an io.Reader. A read that does
// not take exactly the next value, or a read past the last, is recorded as an
// error, so a test can tell that the code drew other randomness than the
// vector's.
type Rand struct {
	draws []Draw
	i     int
	err   error
}

// NewRand returns a reader over draws.
func NewRand(draws []Draw) *Rand { return &Rand{draws: draws} }

// Read implements io.Reader.
func (r *Rand) Read(p []byte) (int, error) {
	if r.i >= len(r.draws) {
		r.fail(fmt.Errorf("read of %d random bytes after the %d injected values", len(p), len(r.draws)))
		return 0, io.ErrUnexpectedEOF
	}
	d := r.draws[r.i]
	if len(p) != len(d.Value) {
		r.fail(fmt.Errorf("read of %d random bytes where %s[%d] has %d", len(p), d.Label, d.Index, len(d.Value)))
		return 0, io.ErrUnexpectedEOF
	}
	r.i++
	return copy(p, d.Value), nil
}

func (r *Rand) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Check reports a misuse of the reader, or values left unread.
func (r *Rand) Check() error {
	if r.err != nil {
		return r.err
	}
	if r.i != len(r.draws) {
		return fmt.Errorf("%d of %d injected random values unread (next %s)", len(r.draws)-r.i, len(r.draws), r.draws[r.i].Label)
	}
	return nil
}

// APDU is one recorded exchange.
type APDU struct {
	C Hex `json:"c"`
	R Hex `json:"r"`
}

// Replay is a transceiver that plays a phone from a recorded apdu_sequence: it
// checks each command against the recorded one and answers the recorded
// response. After the last recorded exchange it answers as a card that left.
type Replay struct {
	seq  []APDU
	i    int
	errs []error
	// Gone is returned for commands past the recording.
	Gone error
}

// NewReplay returns a replay of seq.
func NewReplay(seq []APDU, gone error) *Replay { return &Replay{seq: seq, Gone: gone} }

// Transceive implements apdu.Transceiver.
func (r *Replay) Transceive(_ context.Context, c []byte) ([]byte, error) {
	if r.i >= len(r.seq) {
		r.errs = append(r.errs, fmt.Errorf("command %d %x sent after the recording ended", r.i, c))
		r.i++
		return nil, r.Gone
	}
	e := r.seq[r.i]
	if !bytes.Equal(c, e.C) {
		r.errs = append(r.errs, fmt.Errorf("command %d:\n got  %x\n want %x", r.i, c, e.C))
	}
	r.i++
	return append([]byte(nil), e.R...), nil
}

// Check reports mismatched commands and recorded exchanges never reached.
func (r *Replay) Check() error {
	if len(r.errs) > 0 {
		return fmt.Errorf("%d mismatches; first: %w", len(r.errs), r.errs[0])
	}
	if r.i < len(r.seq) {
		return fmt.Errorf("only %d of %d recorded exchanges were used", r.i, len(r.seq))
	}
	return nil
}
