package pairing_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/internal/vectortest"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/pairing"
	"github.com/dkvehicled/dkvehicled/pairing/spake2plus"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/reader"
	"github.com/dkvehicled/dkvehicled/transaction"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/securechannel"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

func layoutOf(v vectortest.Vehicle) wire.Layout {
	return wire.Layout{SlotIDLen: v.SlotIDLen, TokenLen: v.ImmoTokenLen, OEMDataLen: v.OEMDataLen, AttestationLen: v.AttestationLen}
}

func pairingVehicle(t testing.TB, v vectortest.Vehicle) pairing.Vehicle {
	root, err := x509.ParseCertificate(v.OEMRootCertificate)
	if err != nil {
		t.Fatal(err)
	}
	return pairing.Vehicle{Identifier: v.VehicleIdentifier, Versions: wire.CCC.Versions, Layout: layoutOf(v), Brand: v.Brand,
		Certificate: v.VehicleCertificate, Intermediate: v.VehicleIntermediateCertificate, Root: root, OwnerProfile: v.OwnerProfile, OwnerName: "owner"}
}

func engineVehicle(t testing.TB, v vectortest.Vehicle) transaction.Vehicle {
	key, err := keys.SigningKey(v.VehicleSK)
	if err != nil {
		t.Fatal(err)
	}
	var ps []policy.Profile
	for _, p := range v.AccessProfiles {
		x := policy.Profile{ID: p.ID, Name: p.Name, Access: p.Access, Engine: p.Engine}
		if p.SpeedLimitKPH != nil {
			x.SpeedLimitKPH = *p.SpeedLimitKPH
		}
		ps = append(ps, x)
	}
	profiles, err := policy.NewProfiles(ps)
	if err != nil {
		t.Fatal(err)
	}
	return transaction.Vehicle{Profile: wire.CCC, Identifier: v.VehicleIdentifier, Key: key, Layout: layoutOf(v), Profiles: profiles}
}

func newStore(t testing.TB, s vectortest.Store) *keystore.Store {
	st, err := keystore.Open(filepath.Join(t.TempDir(), "s.db"), keystore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Update(func(tx *keystore.Tx) error { return tx.Restore(s.Snapshot(t)) }); err != nil {
		t.Fatal(err)
	}
	return st
}

func snapshot(t testing.TB, st *keystore.Store) vectortest.Store {
	var snap *keystore.Snapshot
	if err := st.View(func(tx *keystore.Tx) (err error) {
		if errs := tx.Check(); len(errs) > 0 {
			t.Errorf("store inconsistent: %v", errs)
		}
		snap, err = tx.Snapshot()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return vectortest.FromSnapshot(snap)
}

// pairingRecord is a pairing record: a full transaction record plus what
// pairing adds.
type pairingRecord struct {
	vectortest.Record
	Derived struct {
		Path       string `json:"path"`
		Spake2Plus *struct {
			X, Y, Z, V, Context, TT vectortest.Hex
			SmallY                  vectortest.Hex `json:"y"`
			KMain                   vectortest.Hex `json:"K_main"`
			KConfirmP               vectortest.Hex `json:"K_confirmP"`
			KConfirmV               vectortest.Hex `json:"K_confirmV"`
			ConfirmP                vectortest.Hex `json:"confirmP"`
			ConfirmV                vectortest.Hex `json:"confirmV"`
			KShared                 vectortest.Hex `json:"K_shared"`
		} `json:"spake2plus"`
		SystemKeys *struct {
			Kenc, Kmac, Krmac, LTSS vectortest.Hex
			CounterStart            int `json:"counter_start"`
		} `json:"system_keys"`
		Owner *struct {
			EndpointPK             vectortest.Hex `json:"endpoint_PK"`
			KeyID                  vectortest.Hex `json:"keyID"`
			EndpointCertificate    vectortest.Hex `json:"endpoint_certificate"`
			CreationSignature      vectortest.Hex `json:"creation_signature"`
			CreationSignatureInput vectortest.Hex `json:"creation_signature_input"`
		} `json:"owner"`
	} `json:"derived"`
	EndpointGenerated *struct {
		EndpointSK          vectortest.Hex `json:"endpoint_SK"`
		EndpointCertificate vectortest.Hex `json:"endpoint_certificate"`
	} `json:"endpoint_generated"`
}

func (r *pairingRecord) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &r.Record); err != nil {
		return err
	}
	type shadow pairingRecord
	var s struct {
		Derived           json.RawMessage `json:"derived"`
		EndpointGenerated json.RawMessage `json:"endpoint_generated"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if err := json.Unmarshal(s.Derived, &r.Derived); err != nil {
		return err
	}
	return json.Unmarshal(s.EndpointGenerated, &r.EndpointGenerated)
}

type runResult struct {
	o      *pairing.Outcome
	tx     *transaction.Outcome // the ordinary transaction after a fallback
	trace  *pairing.Trace
	store  vectortest.Store
	replay *vectortest.Replay
	rand   *vectortest.Rand
}

// runVehicle runs a pairing record on the vehicle side against its recorded
// answers; a fallback continues with an ordinary engine-start transaction,
// as the daemon does.
func runVehicle(t *testing.T, v vectortest.Vehicle, rec *vectortest.Record) runResult {
	st := newStore(t, rec.VehicleStoreBefore)
	rnd := vectortest.NewRand(rec.InjectedRandomness.Vehicle)
	now := vectortest.Time(t, rec.Now)
	var tr *pairing.Trace
	p, err := pairing.New(pairing.Config{Vehicle: pairingVehicle(t, v), Store: st, Rand: rnd, Now: func() time.Time { return now },
		Trace: func(x *pairing.Trace) { tr = x }})
	if err != nil {
		t.Fatal(err)
	}
	rp := vectortest.NewReplay(rec.APDUSequence, reader.ErrCardGone)
	res := runResult{o: p.Run(context.Background(), rp), trace: tr, replay: rp, rand: rnd}
	if res.o.Result == pairing.Fallback {
		e, err := transaction.New(transaction.Config{Vehicle: engineVehicle(t, v), Store: st, Rand: rnd, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		res.tx = e.Run(context.Background(), rp, transaction.Request{Role: policy.RoleDashboard, Locked: true})
	}
	res.store = snapshot(t, st)
	return res
}

func (r runResult) controlFlow() []byte {
	if r.tx != nil {
		return r.tx.ControlFlow
	}
	return r.o.ControlFlow
}

func (r runResult) path() string {
	if r.tx != nil {
		return r.o.Fallback + "+" + string(r.tx.Path)
	}
	return "pairing"
}

func eq(t *testing.T, name string, got []byte, want vectortest.Hex) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got  %x\n want %x", name, got, []byte(want))
	}
}

func checkChannel(t *testing.T, name string, got []securechannel.Trace, want *vectortest.ChannelTrace) {
	t.Helper()
	if want == nil {
		return
	}
	if len(got) == 0 {
		t.Fatalf("%s: no channel operation", name)
	}
	g := got[0]
	if g.Op != want.Op || g.Counter != want.Counter || g.CounterAfter != want.CounterAfter {
		t.Errorf("%s: %s %d→%d, want %s %d→%d", name, g.Op, g.Counter, g.CounterAfter, want.Op, want.Counter, want.CounterAfter)
	}
	eq(t, name+" chain_before", g.ChainBefore[:], want.ChainBefore)
	eq(t, name+" plaintext", g.Plaintext, want.Plaintext)
	eq(t, name+" padded", g.Padded, want.Padded)
	eq(t, name+" icv", g.ICV, want.ICV)
	eq(t, name+" ciphertext", g.Ciphertext, want.Ciphertext)
	eq(t, name+" mac_full", g.MACFull, want.MACFull)
	eq(t, name+" mac", g.MAC, want.MAC)
	eq(t, name+" chain_after", g.ChainAfter[:], want.ChainAfter)
}

func TestVectorOwnerPairing(t *testing.T) {
	var f struct {
		Vehicle  vectortest.Vehicle `json:"vehicle"`
		Password string             `json:"password"`
		Scrypt   struct {
			Salt  vectortest.Hex `json:"salt"`
			N     int            `json:"N"`
			P     int            `json:"p"`
			DkLen int            `json:"dkLen"`
			Z     vectortest.Hex `json:"z"`
		} `json:"scrypt"`
		W0          vectortest.Hex `json:"w0"`
		W1          vectortest.Hex `json:"w1"`
		L           vectortest.Hex `json:"L"`
		Transaction pairingRecord  `json:"transaction"`
	}
	vectortest.Load(t, "ccc_owner_pairing.json", &f)
	t.Run("password", func(t *testing.T) {
		w0, w1, z, err := spake2plus.Password([]byte(f.Password), f.Scrypt.Salt, f.Scrypt.N, 8, f.Scrypt.P)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "z", z.Expose(), f.Scrypt.Z)
		eq(t, "w0", w0.Expose(), f.W0)
		eq(t, "w1", w1.Expose(), f.W1)
		l, _ := spake2plus.L(w1)
		eq(t, "L", l, f.L)
	})
	rec := &f.Transaction
	t.Run("vehicle", func(t *testing.T) {
		res := runVehicle(t, f.Vehicle, &rec.Record)
		if err := res.replay.Check(); err != nil {
			t.Fatal(err)
		}
		if err := res.rand.Check(); err != nil {
			t.Fatal(err)
		}
		if res.o.Result != pairing.Paired || !bytes.Equal(res.controlFlow(), rec.Outcome.ControlFlow) {
			t.Fatalf("%s %s: %s", res.o.Result, res.o.Reason, res.o.Detail)
		}
		if d := vectortest.StoreDiff(res.store, rec.VehicleStoreAfter); len(d) > 0 {
			t.Fatalf("store after:\n%s", strings.Join(d, "\n"))
		}
		tr, d := res.trace, rec.Derived
		sp := d.Spake2Plus
		eq(t, "X", tr.Spake.ShareP, sp.X)
		eq(t, "y", tr.Y.Expose(), sp.SmallY)
		eq(t, "Y", tr.Spake.ShareV, sp.Y)
		eq(t, "Z", tr.Spake.Z, sp.Z)
		eq(t, "V", tr.Spake.V, sp.V)
		eq(t, "Context", tr.Context, sp.Context)
		eq(t, "TT", tr.Spake.TT, sp.TT)
		eq(t, "K_main", tr.Spake.KMain.Expose(), sp.KMain)
		eq(t, "K_confirmP", tr.Spake.KConfirmP.Expose(), sp.KConfirmP)
		eq(t, "K_confirmV", tr.Spake.KConfirmV.Expose(), sp.KConfirmV)
		eq(t, "confirmP", tr.Spake.ConfirmP, sp.ConfirmP)
		eq(t, "confirmV", tr.Spake.ConfirmV, sp.ConfirmV)
		eq(t, "K_shared", tr.Spake.KShared.Expose(), sp.KShared)
		sk := tr.SystemKeys.Expose()
		eq(t, "Kenc", sk[0:16], d.SystemKeys.Kenc)
		eq(t, "Kmac", sk[16:32], d.SystemKeys.Kmac)
		eq(t, "Krmac", sk[32:48], d.SystemKeys.Krmac)
		eq(t, "LTSS", sk[48:64], d.SystemKeys.LTSS)
		for _, s := range rec.Steps {
			switch s.Command {
			case "WRITE DATA":
				eq(t, "key creation data", tr.KeyCreation, s.Plaintext)
				eq(t, "owner slot", tr.OwnerSlot, s.OwnerSlotIdentifier)
				eq(t, "owner token", tr.OwnerToken.Expose(), s.OwnerImmobilizerToken)
				checkChannel(t, "WRITE DATA command", tr.WriteChannel, s.CommandChannel)
			case "GET DATA":
				checkChannel(t, "GET DATA command", tr.GetChannel, s.CommandChannel)
				if int(tr.GetTimeout.Milliseconds()) != s.TimeoutMS {
					t.Errorf("GET DATA timeout %v, want %d ms", tr.GetTimeout, s.TimeoutMS)
				}
				eq(t, "GET DATA response", tr.Created, s.ResponsePlaintext)
			}
		}
		eq(t, "endpoint_PK", tr.EndpointPK, d.Owner.EndpointPK)
		eq(t, "creation signature input", tr.CreationSignInput, d.Owner.CreationSignatureInput)
		if !bytes.Contains(tr.Created, d.Owner.CreationSignature) || !bytes.Contains(tr.Created, d.Owner.EndpointCertificate) {
			t.Error("GET DATA answer lacks the endpoint certificate or the creation signature")
		}
		if res.o.KeyID == nil || !bytes.Equal(res.o.KeyID[:], d.Owner.KeyID) {
			t.Errorf("key id %v", res.o.KeyID)
		}
	})
	t.Run("endpoint", func(t *testing.T) {
		runEndpoint(t, f.Vehicle, rec, true)
	})
}

// phoneOf builds the phone of a pairing record.
func phoneOf(t *testing.T, v vectortest.Vehicle, rec *pairingRecord) (*endpoint.Phone, *vectortest.Rand) {
	rnd := vectortest.NewRand(rec.InjectedRandomness.Endpoint)
	p := endpoint.New(wire.CCC, versions(rec.EndpointSetup.Versions), layoutOf(v), rnd)
	for _, k := range rec.EndpointKeysBefore {
		sk, _ := keys.SigningKey(k.EndpointSK)
		key := p.InstallOwnerKey(k.VehicleIdentifier, k.VehiclePK, k.AuthorizedPK, nil, sk)
		key.Role, key.Kpersistent, key.Private, key.Confidential = k.Role, []byte(k.Kpersistent), append([]byte(nil), k.PrivateMailbox...), append([]byte(nil), k.ConfidentialMailbox...)
	}
	var fw struct {
		InstanceCASK   vectortest.Hex `json:"instance_ca_SK"`
		InstanceCACert vectortest.Hex `json:"instance_ca_certificate"`
		DeviceCACert   vectortest.Hex `json:"device_oem_ca_certificate"`
	}
	if len(rec.EndpointSetup.Framework) > 0 && string(rec.EndpointSetup.Framework) != "null" {
		if err := json.Unmarshal(rec.EndpointSetup.Framework, &fw); err != nil {
			t.Fatal(err)
		}
		ca, err := keys.SigningKey(fw.InstanceCASK)
		if err != nil {
			t.Fatal(err)
		}
		var cert []byte
		if rec.EndpointGenerated != nil {
			cert = rec.EndpointGenerated.EndpointCertificate
		}
		p.SetDevicePKI(&endpoint.DevicePKI{InstanceCA: ca, InstanceCACert: fw.InstanceCACert, DeviceCACert: fw.DeviceCACert,
			// The vectors' certificates are loaded as given, never rebuilt.
			Issue: func(*ecdsa.PublicKey) ([]byte, error) { return cert, nil }})
	}
	if rec.EndpointSetup.PairingPassword != nil {
		p.SetPairingPassword(*rec.EndpointSetup.PairingPassword)
	}
	return p, rnd
}

func versions(hs []vectortest.Hex) []wire.Version {
	var vs []wire.Version
	for _, h := range hs {
		vs = append(vs, wire.Version(uint16(h[0])<<8|uint16(h[1])))
	}
	return vs
}

// runEndpoint feeds the recorded commands to the record's phone and checks
// its answers up to the first one the test altered, and, when complete, its
// keys afterwards.
func runEndpoint(t *testing.T, v vectortest.Vehicle, rec *pairingRecord, complete bool) {
	p, rnd := phoneOf(t, v, rec)
	altered := map[int]vectortest.Hex{}
	for _, a := range rec.AlteredResponses {
		altered[a.Index] = a.EndpointR
	}
	for i, x := range rec.APDUSequence {
		got, err := p.Transceive(context.Background(), x.C)
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		if r, ok := altered[i]; ok {
			if !bytes.Equal(got, r) {
				t.Errorf("command %d (altered later): phone answered %x, want %x", i, got, []byte(r))
			}
			return
		}
		if !bytes.Equal(got, x.R) {
			t.Fatalf("command %d %x:\n got  %x\n want %x", i, []byte(x.C), got, []byte(x.R))
		}
	}
	if !complete {
		return
	}
	if err := rnd.Check(); err != nil {
		t.Errorf("randomness: %v", err)
	}
	got := p.Keys()
	if len(got) != len(rec.EndpointKeysAfter) {
		t.Fatalf("%d keys after, want %d", len(got), len(rec.EndpointKeysAfter))
	}
	for i, w := range rec.EndpointKeysAfter {
		g := got[i]
		eq(t, "endpoint_PK", g.PK(), w.EndpointPK)
		eq(t, "vehicle_PK", g.VehiclePK, w.VehiclePK)
		eq(t, "authorized_PK", g.AuthorizedPK, w.AuthorizedPK)
		eq(t, "private mailbox", g.Private, w.PrivateMailbox)
		eq(t, "confidential mailbox", g.Confidential, w.ConfidentialMailbox)
		eq(t, "Kpersistent", g.Kpersistent.Expose(), w.Kpersistent)
		if g.Role != w.Role {
			t.Errorf("role %s, want %s", g.Role, w.Role)
		}
	}
}

func TestVectorPairingCases(t *testing.T) {
	var f struct {
		Vehicle      vectortest.Vehicle `json:"vehicle"`
		PairingCases []struct {
			Name            string        `json:"name"`
			ExpectedOutcome string        `json:"expected_outcome"`
			StoreChanged    bool          `json:"store_changed"`
			Transaction     pairingRecord `json:"transaction"`
		} `json:"pairing_cases"`
	}
	vectortest.Load(t, "ccc_negative.json", &f)
	if len(f.PairingCases) != 19 {
		t.Fatalf("%d pairing cases", len(f.PairingCases))
	}
	for i := range f.PairingCases {
		c := &f.PairingCases[i]
		t.Run(c.Name, func(t *testing.T) {
			rec := &c.Transaction
			res := runVehicle(t, f.Vehicle, &rec.Record)
			if err := res.replay.Check(); err != nil {
				t.Error(err)
			}
			if err := res.rand.Check(); err != nil {
				t.Error(err)
			}
			cf := "no control flow"
			if res.controlFlow() != nil {
				cf = hex.EncodeToString(res.controlFlow())
			}
			if cf != c.ExpectedOutcome || cf != hex.EncodeToString(rec.Outcome.ControlFlow) {
				t.Errorf("outcome %s, want %s (%s)", cf, c.ExpectedOutcome, res.o.Detail)
			}
			if res.path() != rec.Outcome.Path {
				t.Errorf("path %s, want %s", res.path(), rec.Outcome.Path)
			}
			if d := vectortest.StoreDiff(res.store, rec.VehicleStoreAfter); len(d) > 0 {
				t.Errorf("store after:\n%s", strings.Join(d, "\n"))
			}
			if (len(vectortest.StoreDiff(res.store, rec.VehicleStoreBefore)) > 0) != c.StoreChanged {
				t.Errorf("store changed: want %v", c.StoreChanged)
			}
			if rec.EndpointHonest || len(rec.AlteredResponses) > 0 {
				runEndpoint(t, f.Vehicle, rec, rec.EndpointHonest)
			}
		})
	}
}
