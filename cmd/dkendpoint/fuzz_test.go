package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// p256Generator is a valid P-256 point (the base point), uncompressed.
var p256Generator, _ = hex.DecodeString("04" +
	"6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296" +
	"4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")

// FuzzInstallEnrolment feeds arbitrary enrolment files (what `dkctl enrol
// owner` printed, or anything else) to `dkendpoint enrol` on a phone that
// made a key for the vehicle. A refused file leaves the state file exactly
// as it was; an accepted one leaves a state that loads, with the key made
// for that vehicle installed as its owner key: the enrolment's vehicle
// key, its slot in entry 0, and the key identifier the file names.
func FuzzInstallEnrolment(f *testing.F) {
	dir := f.TempDir()
	vid := []byte("VEHICLE1")
	p := endpoint.New(wire.CCC, wire.CCC.Versions, wire.DefaultLayout, rand.NewChaCha8([32]byte{'e'}))
	inv, err := p.Invite(vid)
	if err != nil {
		f.Fatal(err)
	}
	pristine := filepath.Join(dir, "phone.json")
	if err := save(pristine, p); err != nil {
		f.Fatal(err)
	}
	state, err := os.ReadFile(pristine)
	if err != nil {
		f.Fatal(err)
	}
	en := control.Enrolment{
		KeyID: keys.KeyIDOf(inv.PublicKey).String(), VehicleIdentifier: hex.EncodeToString(vid),
		VehiclePublicKey: hex.EncodeToString(p256Generator), Slot: "0102030405060708", Profile: "ccc",
	}
	good, _ := json.Marshal(en)
	f.Add(good)
	en.VehiclePublicKey = "04" + hex.EncodeToString(make([]byte, 64)) // not on the curve
	offCurve, _ := json.Marshal(en)
	f.Add(offCurve)
	en.VehiclePublicKey = hex.EncodeToString(p256Generator)
	en.KeyID = ""
	noID, _ := json.Marshal(en)
	f.Add(noID)
	en.KeyID, en.Slot = "00", ""
	f.Add([]byte(`{"vehicle_identifier":"56454849434c4531","vehicle_public_key":"zz","slot":"01"}`))
	wrong, _ := json.Marshal(en)
	f.Add(wrong)
	f.Add([]byte(`{"vehicle_identifier":"","slot":"0102"}`))
	f.Fuzz(func(t *testing.T, file []byte) {
		d := t.TempDir()
		statePath, enPath := filepath.Join(d, "phone.json"), filepath.Join(d, "enrolment.json")
		if err := os.WriteFile(statePath, state, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(enPath, file, 0o600); err != nil {
			t.Fatal(err)
		}
		err := installEnrolment(statePath, enPath, io.Discard)
		after, rerr := os.ReadFile(statePath)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			if !bytes.Equal(after, state) {
				t.Fatalf("refused enrolment (%v) changed the state file", err)
			}
			return
		}
		var got control.Enrolment
		if err := json.Unmarshal(file, &got); err != nil {
			t.Fatalf("accepted an enrolment that is not JSON: %v", err)
		}
		q, err := endpoint.Load(after, nil)
		if err != nil {
			t.Fatalf("state after enrolment does not load: %v", err)
		}
		gvid, _ := hex.DecodeString(got.VehicleIdentifier)
		gpk, _ := hex.DecodeString(got.VehiclePublicKey)
		slot, _ := hex.DecodeString(got.Slot)
		if _, err := keys.ParsePoint(gpk); err != nil {
			t.Fatalf("accepted vehicle public key %x: %v", gpk, err)
		}
		k := q.Key(gvid)
		if k == nil || k.Role != endpoint.RoleOwner || !bytes.Equal(k.VehiclePK, gpk) || !bytes.Equal(k.PK(), inv.PublicKey) {
			t.Fatalf("enrolment %s did not install the invited key as owner key", file)
		}
		l := wire.DefaultLayout
		if n := min(len(slot), l.SlotIDLen); !bytes.Equal(k.Private[l.SlotEntry(0):l.SlotEntry(0)+n], slot[:n]) {
			t.Fatalf("slot %x not in entry 0", slot)
		}
		if got.KeyID != "" && got.KeyID != k.KeyID().String() {
			t.Fatalf("enrolment for key %s installed on key %s", got.KeyID, k.KeyID())
		}
	})
}
