package endpoint_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/internal/vectortest"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

func layoutOf(v vectortest.Vehicle) wire.Layout {
	return wire.Layout{SlotIDLen: v.SlotIDLen, TokenLen: v.ImmoTokenLen, OEMDataLen: v.OEMDataLen, AttestationLen: v.AttestationLen}
}

func versionsOf(t testing.TB, hs []vectortest.Hex) []wire.Version {
	var vs []wire.Version
	for _, h := range hs {
		if len(h) != 2 {
			t.Fatalf("version %x", []byte(h))
		}
		vs = append(vs, wire.Version(uint16(h[0])<<8|uint16(h[1])))
	}
	return vs
}

func keyOf(t testing.TB, k vectortest.EndpointKeys) *endpoint.Key {
	t.Helper()
	sk, err := keys.SigningKey(k.EndpointSK)
	if err != nil {
		t.Fatal(err)
	}
	key := &endpoint.Key{
		VehicleIdentifier: k.VehicleIdentifier, VehiclePK: k.VehiclePK, SK: sk, Role: k.Role,
		Kpersistent: []byte(k.Kpersistent), AuthorizedPK: k.AuthorizedPK,
		Private: append([]byte(nil), k.PrivateMailbox...), Confidential: append([]byte(nil), k.ConfidentialMailbox...),
	}
	if !bytes.Equal(key.PK(), k.EndpointPK) || !bytes.Equal(keyID(key), k.KeyID) {
		t.Fatal("endpoint_PK / keyID do not match endpoint_SK")
	}
	return key
}

func keyID(k *endpoint.Key) []byte { id := k.KeyID(); return id[:] }

// checkKeys compares the phone's keys with endpoint_keys_after.
func checkKeys(t *testing.T, p *endpoint.Phone, want []vectortest.EndpointKeys) {
	t.Helper()
	got := p.Keys()
	if len(got) != len(want) {
		t.Fatalf("%d keys, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		for _, c := range []struct {
			name      string
			got, want []byte
		}{
			{"vehicle_identifier", g.VehicleIdentifier, w.VehicleIdentifier},
			{"vehicle_PK", g.VehiclePK, w.VehiclePK},
			{"endpoint_PK", g.PK(), w.EndpointPK},
			{"Kpersistent", g.Kpersistent.Expose(), w.Kpersistent},
			{"authorized_PK", g.AuthorizedPK, w.AuthorizedPK},
			{"private_mailbox", g.Private, w.PrivateMailbox},
			{"confidential_mailbox", g.Confidential, w.ConfidentialMailbox},
		} {
			if !bytes.Equal(c.got, c.want) {
				t.Errorf("key %d %s:\n got  %x\n want %x", i, c.name, c.got, c.want)
			}
		}
		if g.Role != w.Role {
			t.Errorf("key %d role %s, want %s", i, g.Role, w.Role)
		}
	}
}

func phoneOf(t testing.TB, v vectortest.Vehicle, rec *vectortest.Record) (*endpoint.Phone, *vectortest.Rand) {
	t.Helper()
	prof, err := wire.ProfileByName(rec.EndpointSetup.Profile)
	if err != nil {
		t.Fatal(err)
	}
	rnd := vectortest.NewRand(rec.InjectedRandomness.Endpoint)
	p := endpoint.New(prof, versionsOf(t, rec.EndpointSetup.Versions), layoutOf(v), rnd)
	for _, k := range rec.EndpointKeysBefore {
		p.AddKey(keyOf(t, k))
	}
	return p, rnd
}

// replayEndpoint feeds the recorded commands to a phone built from the
// record. It compares every answer up to the first one the test altered (that
// one with the phone's own answer, endpoint_r) and reports how far it got.
func replayEndpoint(t *testing.T, v vectortest.Vehicle, rec *vectortest.Record) (*endpoint.Phone, bool) {
	t.Helper()
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
			return p, false
		}
		if !bytes.Equal(got, x.R) {
			t.Fatalf("command %d %x:\n got  %x\n want %x", i, []byte(x.C), got, []byte(x.R))
		}
	}
	if err := rnd.Check(); err != nil {
		t.Errorf("randomness: %v", err)
	}
	return p, true
}

type positiveFile struct {
	Vehicle      vectortest.Vehicle  `json:"vehicle"`
	Transactions []vectortest.Record `json:"transactions"`
}

func TestVectorTransactionsEndpointSide(t *testing.T) {
	for _, name := range []string{"ccc_fast.json", "ccc_standard.json", "ccc_engine_start.json", "ccc_friend_first_use.json", "homekey_standard.json", "homekey_fast.json"} {
		var f positiveFile
		vectortest.Load(t, name, &f)
		for i := range f.Transactions {
			rec := &f.Transactions[i]
			t.Run(name+"/"+rec.Name, func(t *testing.T) {
				if !rec.EndpointHonest {
					t.Fatal("positive record not honest")
				}
				p, _ := replayEndpoint(t, f.Vehicle, rec)
				checkKeys(t, p, rec.EndpointKeysAfter)
			})
		}
	}
}

func TestVectorNegativeEndpointSide(t *testing.T) {
	var f struct {
		Vehicle vectortest.Vehicle `json:"vehicle"`
		Cases   []struct {
			Name        string            `json:"name"`
			Transaction vectortest.Record `json:"transaction"`
		} `json:"cases"`
	}
	vectortest.Load(t, "ccc_negative.json", &f)
	honest := 0
	for i := range f.Cases {
		c := &f.Cases[i]
		t.Run(c.Name, func(t *testing.T) {
			rec := &c.Transaction
			if !rec.EndpointHonest && len(rec.AlteredResponses) == 0 {
				// The recorded answers were not made by an honest phone and
				// nothing tells what one would have said: the vehicle-side
				// test covers these records.
				return
			}
			p, complete := replayEndpoint(t, f.Vehicle, rec)
			if complete {
				honest++
				checkKeys(t, p, rec.EndpointKeysAfter)
			}
		})
	}
	if honest < 20 {
		t.Fatalf("only %d honest records replayed in full", honest)
	}
}

// The EXCHANGE session: the phone answers every scripted command and its
// mailboxes end as recorded.
func TestVectorExchangeEndpointSide(t *testing.T) {
	var f struct {
		Vehicle            vectortest.Vehicle        `json:"vehicle"`
		EndpointSetup      vectortest.EndpointSetup  `json:"endpoint_setup"`
		EndpointKeysBefore []vectortest.EndpointKeys `json:"endpoint_keys_before"`
		EndpointKeysAfter  []vectortest.EndpointKeys `json:"endpoint_keys_after"`
		InjectedRandomness vectortest.Randomness     `json:"injected_randomness"`
		APDUSequence       []vectortest.APDU         `json:"apdu_sequence"`
	}
	vectortest.Load(t, "ccc_exchange.json", &f)
	rec := &vectortest.Record{EndpointSetup: f.EndpointSetup, EndpointKeysBefore: f.EndpointKeysBefore, InjectedRandomness: f.InjectedRandomness, APDUSequence: f.APDUSequence}
	p, complete := replayEndpoint(t, f.Vehicle, rec)
	if !complete {
		t.Fatal("session not replayed in full")
	}
	checkKeys(t, p, f.EndpointKeysAfter)
}

// The owner's offline share reproduces the package bytes, the owner's
// mailbox changes and the friend's initial mailboxes.
func TestVectorShare(t *testing.T) {
	var f struct {
		Vehicle vectortest.Vehicle `json:"vehicle"`
		Share   struct {
			OwnerBefore  vectortest.EndpointKeys `json:"owner_before"`
			OwnerAfter   vectortest.EndpointKeys `json:"owner_after"`
			FriendAfter  vectortest.EndpointKeys `json:"friend_after_share"`
			OwnerChanges struct {
				MovedEntry int `json:"moved_entry"`
			} `json:"owner_changes"`
			FriendKey struct {
				SK vectortest.Hex `json:"SK"`
			} `json:"friend_key"`
			FriendKeyDER          vectortest.Hex `json:"FriendKey_DER"`
			OwnerSignature        vectortest.Hex `json:"owner_signature"`
			AttestationPackageDER vectortest.Hex `json:"AttestationPackage_DER"`
			Carried               struct {
				SlotIdentifier   vectortest.Hex `json:"slot_identifier"`
				ImmobilizerToken vectortest.Hex `json:"immobilizer_token"`
				Package          vectortest.Hex `json:"AttestationPackage_DER"`
			} `json:"carried_to_friend"`
			Fields struct {
				Profile      int    `json:"profile"`
				NotBefore    string `json:"notBefore"`
				NotAfter     string `json:"notAfter"`
				FriendlyName string `json:"friendlyName"`
			} `json:"fields"`
		} `json:"share"`
	}
	vectortest.Load(t, "ccc_friend_first_use.json", &f)
	s := f.Share
	l := layoutOf(f.Vehicle)
	owner := endpoint.New(wire.CCC, []wire.Version{0x0100}, l, bytes.NewReader(nil))
	owner.AddKey(keyOf(t, s.OwnerBefore))
	friend := endpoint.New(wire.CCC, []wire.Version{0x0100}, l, bytes.NewReader(s.FriendKey.SK))
	inv, err := friend.Invite(f.Vehicle.VehicleIdentifier)
	if err != nil {
		t.Fatal(err)
	}
	share, err := owner.Share(inv, endpoint.ShareTerms{
		Profile: s.Fields.Profile, NotBefore: vectortest.Time(t, s.Fields.NotBefore),
		NotAfter: vectortest.Time(t, s.Fields.NotAfter), FriendlyName: s.Fields.FriendlyName,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(share.Package, s.AttestationPackageDER) || !bytes.Equal(share.Package, s.Carried.Package) {
		t.Fatalf("package:\n got  %x\n want %x", share.Package, []byte(s.AttestationPackageDER))
	}
	if !bytes.Contains(share.Package, s.FriendKeyDER) || !bytes.Contains(share.Package, s.OwnerSignature) {
		t.Fatal("package does not hold the FriendKey DER and the owner signature")
	}
	if share.MovedEntry != s.OwnerChanges.MovedEntry || !bytes.Equal(share.SlotIdentifier, s.Carried.SlotIdentifier) ||
		!bytes.Equal(share.Token.Expose(), s.Carried.ImmobilizerToken) {
		t.Fatalf("moved entry %d slot %x", share.MovedEntry, share.SlotIdentifier)
	}
	if err := friend.Accept(share); err != nil {
		t.Fatal(err)
	}
	t.Run("owner", func(t *testing.T) { checkKeys(t, owner, []vectortest.EndpointKeys{s.OwnerAfter}) })
	t.Run("friend", func(t *testing.T) { checkKeys(t, friend, []vectortest.EndpointKeys{s.FriendAfter}) })
}

// The kormax transcripts: an independent public Home Key reader's commands
// (without the trailing Le) get the recorded answers from the phone.
func TestVectorKormaxEndpointSide(t *testing.T) {
	var k struct {
		Runs []struct {
			Name         string            `json:"name"`
			Vector       *string           `json:"vector"`
			APDUSequence []vectortest.APDU `json:"apdu_sequence"`
		} `json:"runs"`
	}
	vectortest.Load(t, "homekey_kormax_transcripts.json", &k)
	var std, fast positiveFile
	vectortest.Load(t, "homekey_standard.json", &std)
	vectortest.Load(t, "homekey_fast.json", &fast)
	files := map[string]*positiveFile{"homekey_standard.json": &std, "homekey_fast.json": &fast}
	ran := 0
	for _, run := range k.Runs {
		if run.Vector == nil {
			continue
		}
		t.Run(run.Name, func(t *testing.T) {
			f := files[*run.Vector]
			rec := f.Transactions[0]
			rec.APDUSequence = run.APDUSequence
			// This reader sends AUTH0 and AUTH1 without the trailing Le.
			for _, x := range run.APDUSequence {
				c, err := apdu.ParseCommand(x.C)
				if err != nil {
					t.Fatal(err)
				}
				if (c.INS == wire.INSAuth0 || c.INS == wire.INSAuth1) && c.Ne != 0 {
					t.Fatalf("kormax command %x carries Le", []byte(x.C))
				}
			}
			p, complete := replayEndpoint(t, f.Vehicle, &rec)
			if !complete {
				t.Fatal("not replayed in full")
			}
			checkKeys(t, p, rec.EndpointKeysAfter)
			ran++
		})
	}
	if ran != 3 {
		t.Fatalf("%d kormax runs replayed, want 3", ran)
	}
}
