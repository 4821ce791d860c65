package endpoint_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/internal/pki"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/pairing"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

func benchPKI(t *testing.T) *pki.Bench {
	t.Helper()
	vk, err := keys.NewSigningKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := pki.Init(dir, rand.Reader, &vk.PublicKey, time.Now()); err != nil {
		t.Fatal(err)
	}
	b, err := pki.LoadBench(dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pair runs an owner pairing between a vehicle of the bench PKI, holding the
// verifier of 12345678, and the phone.
func pair(t *testing.T, b *pki.Bench, p *endpoint.Phone) *pairing.Outcome {
	t.Helper()
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
	return pr.Run(context.Background(), p)
}

// The device PKI and the pairing password survive Save and Load, and the
// loaded phone, issuing its endpoint certificate itself, pairs.
func TestSaveLoadPairing(t *testing.T) {
	b := benchPKI(t)
	p := endpoint.New(wire.CCC, wire.CCC.Versions, wire.DefaultLayout, rand.Reader)
	p.SetDevicePKI(b.DevicePKI(rand.Reader))
	p.SetPairingPassword("12345678")
	saved, err := p.Save()
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		DevicePKI map[string]string `json:"device_pki"`
		Password  string            `json:"pairing_password"`
	}
	if err := json.Unmarshal(saved, &s); err != nil {
		t.Fatal(err)
	}
	if s.Password != "12345678" || s.DevicePKI["instance_ca_certificate"] != hex.EncodeToString(b.InstanceCA.Cert.Raw) ||
		s.DevicePKI["device_oem_ca_certificate"] != hex.EncodeToString(b.DeviceCA.Cert.Raw) ||
		s.DevicePKI["instance_ca_sk"] != hex.EncodeToString(keys.Scalar(b.InstanceCA.Key).Expose()) {
		t.Fatalf("saved: %s", saved)
	}
	loaded, err := endpoint.Load(saved, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := loaded.Save(); err != nil || !bytes.Equal(again, saved) {
		t.Fatalf("saved again (%v):\n%s\nwant\n%s", err, again, saved)
	}
	if o := pair(t, b, loaded); o.Result != pairing.Paired {
		t.Fatalf("%s %s: %s", o.Result, o.Reason, o.Detail)
	}
	after, err := loaded.Save()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(after), "pairing_password") || !strings.Contains(string(after), `"role": "owner"`) {
		t.Fatalf("after pairing: %s", after)
	}
}

// A state file from before device PKIs and pairing passwords still loads;
// such a phone has no framework.
func TestLoadWithoutPKI(t *testing.T) {
	old := `{"profile":"ccc","versions":["0100"],"layout":{"SlotIDLen":8,"TokenLen":16,"OEMDataLen":32,"AttestationLen":512},"keys":[]}`
	p, err := endpoint.Load([]byte(old), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := p.Save()
	if err != nil || strings.Contains(string(saved), "device_pki") || strings.Contains(string(saved), "pairing_password") {
		t.Fatalf("saved (%v): %s", err, saved)
	}
	if o := pair(t, benchPKI(t), p); o.Result != pairing.Fallback || o.Fallback != "framework_absent" {
		t.Fatalf("%s %s", o.Result, o.Fallback)
	}
}

func TestLoadBadPKI(t *testing.T) {
	b, other := benchPKI(t), benchPKI(t)
	p := endpoint.New(wire.CCC, wire.CCC.Versions, wire.DefaultLayout, rand.Reader)
	p.SetDevicePKI(b.DevicePKI(rand.Reader))
	saved, err := p.Save()
	if err != nil {
		t.Fatal(err)
	}
	sk := hex.EncodeToString(keys.Scalar(b.InstanceCA.Key).Expose())
	for name, spoil := range map[string]func(m map[string]any){
		"another key": func(m map[string]any) {
			m["instance_ca_sk"] = hex.EncodeToString(keys.Scalar(other.InstanceCA.Key).Expose())
		},
		"zero key":          func(m map[string]any) { m["instance_ca_sk"] = strings.Repeat("00", 32) },
		"no key":            func(m map[string]any) { delete(m, "instance_ca_sk") },
		"corrupt CA":        func(m map[string]any) { m["instance_ca_certificate"] = "3000" },
		"corrupt device CA": func(m map[string]any) { m["device_oem_ca_certificate"] = "3000" },
		"no device CA":      func(m map[string]any) { delete(m, "device_oem_ca_certificate") },
		"not hex":           func(m map[string]any) { m["instance_ca_certificate"] = "zz" },
	} {
		t.Run(name, func(t *testing.T) {
			var s map[string]any
			json.Unmarshal(saved, &s)
			spoil(s["device_pki"].(map[string]any))
			b, _ := json.Marshal(s)
			_, err := endpoint.Load(b, rand.Reader)
			if err == nil {
				t.Fatal("loaded")
			}
			if strings.Contains(err.Error(), sk[:16]) {
				t.Fatalf("error quotes the key: %v", err)
			}
		})
	}
	// A device PKI without its instance CA key cannot be saved.
	p.SetDevicePKI(&endpoint.DevicePKI{InstanceCACert: b.InstanceCA.Cert.Raw, DeviceCACert: b.DeviceCA.Cert.Raw})
	if _, err := p.Save(); err == nil {
		t.Fatal("saved a device PKI without its key")
	}
}
