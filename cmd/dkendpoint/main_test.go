package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
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

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"fly"}, {"tap"}, {"key", "-state", "x"}} {
		if code := run(args, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
