package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/internal/pki"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/pairing"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

func cli(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("dkendpoint %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
	}
	return out.String()
}

// The phone's life in files: new, key, enrol (from the vehicle's enrolment),
// share to a friend; the state files keep it all and stay private.
func TestStateFiles(t *testing.T) {
	dir := t.TempDir()
	owner, friend := filepath.Join(dir, "owner.json"), filepath.Join(dir, "friend.json")
	cli(t, "new", "-state", owner)
	if st, err := os.Stat(owner); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", st.Mode(), err)
	}
	if code := run([]string{"new", "-state", owner}, &bytes.Buffer{}, &bytes.Buffer{}); code == 0 {
		t.Fatal("an existing phone was overwritten")
	}
	pkHex := strings.TrimSpace(cli(t, "key", "-state", owner, "-vehicle", "56454849434c4531"))
	pk, err := hex.DecodeString(pkHex)
	if err != nil || len(pk) != 65 {
		t.Fatalf("public key %q", pkHex)
	}
	vk, _ := keys.SigningKey(bytes.Repeat([]byte{7}, 32))
	en := control.Enrolment{KeyID: keys.KeyIDOf(pk).String(), VehicleIdentifier: "56454849434c4531",
		VehiclePublicKey: hex.EncodeToString(keys.EncodePoint(&vk.PublicKey)), Slot: "0102030405060708", Profile: "ccc"}
	b, _ := json.Marshal(en)
	enFile := filepath.Join(dir, "enrolment.json")
	os.WriteFile(enFile, b, 0o600)
	cli(t, "enrol", "-state", owner, "-enrolment", enFile)
	if out := cli(t, "show", "-state", owner); !strings.Contains(out, "owner key "+en.KeyID) {
		t.Fatalf("show: %s", out)
	}
	// An enrolment for another key is refused.
	other := filepath.Join(dir, "other.json")
	cli(t, "new", "-state", other)
	cli(t, "key", "-state", other, "-vehicle", "56454849434c4531")
	if code := run([]string{"enrol", "-state", other, "-enrolment", enFile}, &bytes.Buffer{}, &bytes.Buffer{}); code == 0 {
		t.Fatal("an enrolment for another key was installed")
	}
	// The owner has no entry to share until its first dashboard tap filled them.
	if code := run([]string{"share", "-from", owner, "-to", friend, "-profile", "1", "-name", "A"}, &bytes.Buffer{}, &bytes.Buffer{}); code == 0 {
		t.Fatal("shared without provisioned entries")
	}
	raw, _ := os.ReadFile(owner)
	p, err := endpoint.Load(raw, nil)
	if err != nil || p.Key([]byte("VEHICLE1")) == nil || p.Key([]byte("VEHICLE1")).Private[0] != 0x01 {
		t.Fatalf("saved owner: %v", err)
	}
}

// pairWith runs an owner pairing between a vehicle of the bench PKI in dir,
// holding the verifier of 12345678, and the phone saved in state; the phone
// is saved back.
func pairWith(t *testing.T, dir, state string) *pairing.Outcome {
	t.Helper()
	b, err := pki.LoadBench(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := pki.NewVerifier(rand.Reader, "12345678", pki.MinScryptN)
	if err != nil {
		t.Fatal(err)
	}
	st, err := keystore.Open(filepath.Join(t.TempDir(), "s.db"), keystore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Update(func(tx *keystore.Tx) error { return tx.PutVerifier(v.Keystore(pairing.MaxAttempts)) }); err != nil {
		t.Fatal(err)
	}
	pr, err := pairing.New(pairing.Config{
		Vehicle: pairing.Vehicle{Identifier: []byte("VEHICLE1"), Versions: wire.CCC.Versions, Layout: wire.DefaultLayout,
			Brand: []byte{0, 1}, Certificate: b.Vehicle.Raw, Root: b.Root.Cert, OwnerName: "owner"},
		Store: st, Rand: rand.Reader, Now: time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := load(state)
	if err != nil {
		t.Fatal(err)
	}
	o := pr.Run(context.Background(), p)
	if err := save(state, p); err != nil {
		t.Fatal(err)
	}
	return o
}

// A phone made with the bench PKI and given the password pairs; a cleared
// password leaves it not ready; a phone without a PKI takes no password.
func TestPairing(t *testing.T) {
	dir := t.TempDir()
	vk, _ := keys.NewSigningKey(rand.Reader)
	pkiDir := filepath.Join(dir, "pki")
	if err := pki.Init(pkiDir, rand.Reader, &vk.PublicKey, time.Now()); err != nil {
		t.Fatal(err)
	}
	owner, other, plain := filepath.Join(dir, "owner.json"), filepath.Join(dir, "other.json"), filepath.Join(dir, "plain.json")
	cli(t, "new", "-state", owner, "-pki", pkiDir)
	if out := cli(t, "show", "-state", owner); !strings.Contains(out, "instance CA CN=dkvehicled bench instance CA") {
		t.Errorf("show: %s", out)
	}
	cli(t, "password", "-state", owner, "12345678")
	if o := pairWith(t, pkiDir, owner); o.Result != pairing.Paired {
		t.Fatalf("%s %s: %s", o.Result, o.Reason, o.Detail)
	}
	if out := cli(t, "show", "-state", owner); !strings.Contains(out, "owner key ") {
		t.Errorf("show after pairing: %s", out)
	}

	cli(t, "new", "-state", other, "-pki", pkiDir)
	cli(t, "password", "-state", other, "12345678")
	cli(t, "password", "-state", other, "-clear")
	if o := pairWith(t, pkiDir, other); o.Result != pairing.Fallback || o.Fallback != "framework_not_ready" {
		t.Fatalf("cleared password: %s %s", o.Result, o.Fallback)
	}

	cli(t, "new", "-state", plain)
	if code := run([]string{"password", "-state", plain, "12345678"}, &bytes.Buffer{}, &bytes.Buffer{}); code != 1 {
		t.Errorf("password on a phone without a PKI: exit %d", code)
	}
	if code := run([]string{"new", "-state", filepath.Join(dir, "x.json"), "-pki", dir}, &bytes.Buffer{}, &bytes.Buffer{}); code != 1 {
		t.Errorf("new with no PKI there: exit %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.json")); err == nil {
		t.Error("a phone was made without its PKI")
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"fly"}, {"tap"}, {"key", "-state", "x"}, {"password", "-state", "x"},
		{"password", "-state", "x", "-clear", "1"}, {"password", "-state", "x", ""}, {"password", "-state", "x", "1", "2"},
		{"new", "-state", "x", "extra"}} {
		if code := run(args, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
