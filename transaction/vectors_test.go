package transaction_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/internal/vectortest"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/reader"
	"github.com/dkvehicled/dkvehicled/transaction"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/securechannel"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// vehicleOf configures the vehicle from a file's vehicle block and checks the
// block's derived fields (public key, AID, layout offsets) against the code.
func vehicleOf(t testing.TB, v vectortest.Vehicle) transaction.Vehicle {
	t.Helper()
	prof, err := wire.ProfileByName(v.Profile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(prof.AppletAID, v.AppletAID) || len(v.VehicleIdentifier) != prof.IdentifierLen {
		t.Fatalf("profile %s: AID %x / identifier length %d", v.Profile, v.AppletAID, len(v.VehicleIdentifier))
	}
	var sv []wire.Version
	for _, x := range v.SupportedVersions {
		sv = append(sv, wire.Version(uint16(x[0])<<8|uint16(x[1])))
	}
	if fmt.Sprint(sv) != fmt.Sprint(prof.Versions) {
		t.Fatalf("supported versions %v, profile has %v", sv, prof.Versions)
	}
	key, err := keys.SigningKey(v.VehicleSK)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(keys.EncodePoint(&key.PublicKey), v.VehiclePK) {
		t.Fatal("vehicle_PK does not match vehicle_SK")
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
	l := wire.Layout{SlotIDLen: v.SlotIDLen, TokenLen: v.ImmoTokenLen, OEMDataLen: v.OEMDataLen, AttestationLen: v.AttestationLen}
	m := v.PrivateMailboxLayout
	if m["SigBmp"] != wire.OffsetSigBmp || m["SlotIdentBmp"] != wire.OffsetSlotIdentBmp || m["SlotIdentLst"] != l.SlotEntry(0) ||
		m["OEM_data"] != l.OEMData() || m["attestation"] != l.Attestation() || m["total"] != l.PrivateLen() || v.ConfidentialMailboxLen != l.ConfidentialLen() {
		t.Fatalf("mailbox layout %v does not match the code's", m)
	}
	return transaction.Vehicle{Profile: prof, Identifier: v.VehicleIdentifier, Key: key, Layout: l, Profiles: profiles}
}

// replayed is one record run on the vehicle side against its recorded answers.
type replayed struct {
	outcome *transaction.Outcome
	steps   []transaction.Step
	store   vectortest.Store
	checks  []error
}

func newStore(t testing.TB, s vectortest.Store) *keystore.Store {
	t.Helper()
	st, err := keystore.Open(filepath.Join(t.TempDir(), "store.db"), keystore.Options{})
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
	t.Helper()
	var snap *keystore.Snapshot
	err := st.View(func(tx *keystore.Tx) (err error) {
		if errs := tx.Check(); len(errs) > 0 {
			t.Errorf("store inconsistent after the transaction: %v", errs)
		}
		snap, err = tx.Snapshot()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return vectortest.FromSnapshot(snap)
}

func request(rec *vectortest.Record) transaction.Request {
	return transaction.Request{
		Role:     policy.Role(rec.Reader),
		Locked:   true,
		Disabled: !rec.VehicleState.DigitalKeyEnabled || !rec.VehicleState.ReaderEnabled,
	}
}

func replayVehicle(t testing.TB, v vectortest.Vehicle, rec *vectortest.Record) replayed {
	t.Helper()
	st := newStore(t, rec.VehicleStoreBefore)
	rnd := vectortest.NewRand(rec.InjectedRandomness.Vehicle)
	var steps []transaction.Step
	e, err := transaction.New(transaction.Config{
		Vehicle: vehicleOf(t, v), Store: st, Rand: rnd, Now: func() time.Time { return vectortest.Time(t, rec.Now) },
		Trace: func(s transaction.Step) { steps = append(steps, s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	rp := vectortest.NewReplay(rec.APDUSequence, reader.ErrCardGone)
	o := e.Run(context.Background(), rp, request(rec))
	var checks []error
	if err := rp.Check(); err != nil {
		checks = append(checks, fmt.Errorf("APDUs: %w", err))
	}
	if err := rnd.Check(); err != nil {
		checks = append(checks, fmt.Errorf("randomness: %w", err))
	}
	return replayed{outcome: o, steps: steps, store: snapshot(t, st), checks: checks}
}

// checkOutcome compares the outcome and the store after the transaction.
func checkOutcome(t *testing.T, rec *vectortest.Record, got replayed) {
	t.Helper()
	for _, err := range got.checks {
		t.Error(err)
	}
	o, want := got.outcome, rec.Outcome
	if !bytes.Equal(o.ControlFlow, want.ControlFlow) {
		t.Errorf("CONTROL FLOW %x, want %x (detail: %s)", o.ControlFlow, []byte(want.ControlFlow), o.Detail)
	}
	if (want.Result == "success") != o.Allowed() {
		t.Errorf("result %s, want %s (detail: %s)", o.Result, want.Result, o.Detail)
	}
	if want.P2 != nil && byte(o.Reason) != want.P2[0] && o.ControlFlow != nil {
		t.Errorf("reason %s, want %s", o.Reason, want.P2)
	}
	if string(o.Path) != want.Path {
		t.Errorf("path %s, want %s", o.Path, want.Path)
	}
	if d := vectortest.StoreDiff(got.store, rec.VehicleStoreAfter); len(d) > 0 {
		t.Errorf("store after differs:\n  %s", strings.Join(d, "\n  "))
	}
}

type cmp struct {
	t    *testing.T
	name string
}

func (c cmp) eq(field string, got []byte, want vectortest.Hex) {
	c.t.Helper()
	if !bytes.Equal(got, want) {
		c.t.Errorf("%s %s:\n got  %x\n want %x", c.name, field, got, []byte(want))
	}
}

func (c cmp) channel(field string, got *securechannel.Trace, want *vectortest.ChannelTrace) {
	c.t.Helper()
	if want == nil {
		if got != nil {
			c.t.Errorf("%s %s: unexpected channel operation %s", c.name, field, got.Op)
		}
		return
	}
	if got == nil {
		c.t.Errorf("%s %s: no channel operation, want %s", c.name, field, want.Op)
		return
	}
	f := field + "."
	if got.Op != want.Op || got.Counter != want.Counter {
		c.t.Errorf("%s %s: op %s counter %d, want %s %d", c.name, field, got.Op, got.Counter, want.Op, want.Counter)
	}
	c.eq(f+"chain_before", got.ChainBefore[:], want.ChainBefore)
	c.eq(f+"plaintext", got.Plaintext, want.Plaintext)
	c.eq(f+"padded", got.Padded, want.Padded)
	c.eq(f+"icv", got.ICV, want.ICV)
	c.eq(f+"ciphertext", got.Ciphertext, want.Ciphertext)
	c.eq(f+"mac_full", got.MACFull, want.MACFull)
	c.eq(f+"mac", got.MAC, want.MAC)
	if got.Failed != (want.ChainAfter == nil) {
		c.t.Errorf("%s %s: failed=%v, vector chain_after %x", c.name, field, got.Failed, []byte(want.ChainAfter))
	}
	if !got.Failed {
		c.eq(f+"chain_after", got.ChainAfter[:], want.ChainAfter)
		if got.CounterAfter != want.CounterAfter {
			c.t.Errorf("%s %s: counter_after %d, want %d", c.name, field, got.CounterAfter, want.CounterAfter)
		}
	}
}

// checkSteps compares every intermediate the engine exposes with the
// record's steps and derived values.
func checkSteps(t *testing.T, rec *vectortest.Record, got []transaction.Step) {
	t.Helper()
	var fast *transaction.Step
	var wire []transaction.Step
	for i := range got {
		if got[i].Command == "FAST" {
			fast = &got[i]
			continue
		}
		wire = append(wire, got[i])
	}
	if len(wire) != len(rec.Steps) {
		var names []string
		for _, s := range wire {
			names = append(names, s.Command)
		}
		t.Fatalf("steps %v, want %d steps", names, len(rec.Steps))
	}
	for i, w := range rec.Steps {
		g := wire[i]
		c := cmp{t, fmt.Sprintf("step %d %s:", i, w.Command)}
		if g.Command != w.Command {
			t.Fatalf("%s got %s", c.name, g.Command)
		}
		switch w.Command {
		case "SELECT":
			c.eq("endpoint_versions", g.EndpointVersions, w.EndpointVersions)
			if w.SelectedVersion != nil {
				c.eq("selected_version", g.SelectedVersion.Bytes(), w.SelectedVersion)
			}
		case "AUTH0":
			c.eq("vehicle_eSK", g.VehicleESK.Expose(), w.VehicleESK)
			c.eq("vehicle_ePK", g.VehicleEPK, w.VehicleEPK)
			c.eq("transaction_identifier", g.TxID, w.TransactionIdentifier)
			c.eq("p1", []byte{g.P1}, w.P1)
			c.eq("p2", []byte{g.P2}, w.P2)
			c.eq("endpoint_ePK", g.EndpointEPK, w.EndpointEPK)
			c.eq("cryptogram", g.Cryptogram, w.Cryptogram)
			if len(g.Ignored9D) != len(w.Ignored9D) {
				t.Errorf("%s ignored_9D %x, want %x", c.name, g.Ignored9D, w.Ignored9D)
			}
			for j := range min(len(g.Ignored9D), len(w.Ignored9D)) {
				c.eq("ignored_9D", g.Ignored9D[j], w.Ignored9D[j])
			}
		case "AUTH1":
			c.eq("Z", g.Z.Expose(), w.Z)
			c.eq("Kdh", g.Kdh.Expose(), w.Kdh)
			c.eq("info_volatile", g.InfoVolatile, w.InfoVolatile)
			c.eq("info_persistent", g.InfoPersistent, w.InfoPersistent)
			c.eq("Kenc", g.Session.Enc.Expose(), w.Kenc)
			c.eq("Kmac", g.Session.Mac.Expose(), w.Kmac)
			c.eq("Krmac", g.Session.Rmac.Expose(), w.Krmac)
			c.eq("Kpersistent", g.Kpersistent.Expose(), w.Kpersistent)
			c.eq("vehicle_TBS", g.VehicleTBS, w.VehicleTBS)
			c.eq("vehicle_signature", g.VehicleSignature, w.VehicleSignature)
			c.channel("secure_channel", channelOp(g.Channels, 0), w.SecureChannel)
			c.eq("response_plaintext", g.ResponsePlaintext, w.ResponsePlaintext)
			c.eq("identifier", g.Identifier, w.Identifier)
			c.eq("endpoint_signature", g.EndpointSignature, w.EndpointSignature)
			c.eq("endpoint_TBS", g.EndpointTBS, w.EndpointTBS)
		case "EXCHANGE":
			c.eq("plaintext", g.Plaintext, w.Plaintext)
			if len(g.Ops) != len(w.Operations) {
				t.Errorf("%s %d operations, want %d", c.name, len(g.Ops), len(w.Operations))
			}
			for j := range min(len(g.Ops), len(w.Operations)) {
				c.eq(fmt.Sprintf("operation %d tag", j), []byte{g.Ops[j].Tag}, w.Operations[j].Tag)
				c.eq(fmt.Sprintf("operation %d value", j), g.Ops[j].Value(), w.Operations[j].Value)
			}
			c.channel("command_channel", channelOp(g.Channels, 0), w.CommandChannel)
			c.channel("response_channel", channelOp(g.Channels, 1), w.ResponseChan)
			if g.Timeout != w.TimeoutMS {
				t.Errorf("%s timeout %d ms, want %d", c.name, g.Timeout, w.TimeoutMS)
			}
			c.eq("response_plaintext", g.ResponsePlaintext, w.ResponsePlaintext)
			if w.Status != nil {
				c.eq("status", []byte{byte(g.Status >> 8), byte(g.Status)}, w.Status)
			}
		case "CONTROL FLOW":
			c.eq("p1", []byte{g.P1}, w.P1)
			c.eq("p2", []byte{g.P2}, w.P2)
		default:
			t.Fatalf("%s unknown command", c.name)
		}
	}
	checkFast(t, rec.Derived, fast)
}

func channelOp(ts []securechannel.Trace, i int) *securechannel.Trace {
	if i < len(ts) {
		return &ts[i]
	}
	return nil
}

func checkFast(t *testing.T, d vectortest.Derived, fast *transaction.Step) {
	t.Helper()
	var tried []transaction.FastTry
	if fast != nil {
		tried = fast.FastTried
	}
	if len(tried) != len(d.FastCandidates) {
		t.Fatalf("fast path tried %d candidates, want %d", len(tried), len(d.FastCandidates))
	}
	for i, w := range d.FastCandidates {
		g := tried[i]
		c := cmp{t, fmt.Sprintf("fast candidate %d:", i)}
		c.eq("keyID", g.KeyID[:], w.KeyID)
		c.eq("info", g.Info, w.Info)
		c.eq("okm", g.OKM.Expose(), w.OKM)
		c.eq("expected_cryptogram", g.Expected, w.ExpectedCryptogram)
		if g.Match != w.Match {
			t.Errorf("fast candidate %d: match %v, want %v", i, g.Match, w.Match)
		}
	}
	if d.Path == "fast" && d.Session != nil {
		c := cmp{t, "fast session:"}
		if fast == nil || fast.FastSession == nil {
			t.Fatal("fast path taken without a session")
		}
		c.eq("Kenc", fast.FastSession.Enc.Expose(), d.Session.Kenc)
		c.eq("Kmac", fast.FastSession.Mac.Expose(), d.Session.Kmac)
		c.eq("Krmac", fast.FastSession.Rmac.Expose(), d.Session.Krmac)
	}
}

type positiveFile struct {
	Vehicle      vectortest.Vehicle  `json:"vehicle"`
	Transactions []vectortest.Record `json:"transactions"`
}

func TestVectorTransactions(t *testing.T) {
	files := []string{"ccc_fast.json", "ccc_standard.json", "ccc_engine_start.json", "ccc_friend_first_use.json", "homekey_standard.json", "homekey_fast.json"}
	n := 0
	for _, name := range files {
		var f positiveFile
		vectortest.Load(t, name, &f)
		if len(f.Transactions) == 0 {
			t.Fatalf("%s: no transactions", name)
		}
		for i := range f.Transactions {
			rec := &f.Transactions[i]
			n++
			t.Run(strings.TrimSuffix(name, ".json")+"/"+rec.Name, func(t *testing.T) {
				got := replayVehicle(t, f.Vehicle, rec)
				checkOutcome(t, rec, got)
				checkSteps(t, rec, got.steps)
			})
		}
	}
	if n != 10 {
		t.Fatalf("%d transactions, want 10", n)
	}
}

type negativeFile struct {
	Vehicle vectortest.Vehicle `json:"vehicle"`
	Cases   []struct {
		Name             string            `json:"name"`
		Reader           string            `json:"reader"`
		ExpectedOutcome  string            `json:"expected_outcome"`
		StoreChanged     bool              `json:"store_changed"`
		StoreChangedKeys []string          `json:"store_changed_keys"`
		Transaction      vectortest.Record `json:"transaction"`
	} `json:"cases"`
}

func TestVectorNegativeCases(t *testing.T) {
	var f negativeFile
	vectortest.Load(t, "ccc_negative.json", &f)
	if len(f.Cases) < 40 {
		t.Fatalf("only %d cases", len(f.Cases))
	}
	for i := range f.Cases {
		c := &f.Cases[i]
		t.Run(c.Name, func(t *testing.T) {
			rec := &c.Transaction
			got := replayVehicle(t, f.Vehicle, rec)
			checkOutcome(t, rec, got)
			checkSteps(t, rec, got.steps)
			cf := "no control flow"
			if got.outcome.ControlFlow != nil {
				cf = hex.EncodeToString(got.outcome.ControlFlow)
			}
			if cf != c.ExpectedOutcome {
				t.Errorf("outcome %s, want %s", cf, c.ExpectedOutcome)
			}
			changed := vectortest.StoreDiff(got.store, rec.VehicleStoreBefore)
			if (len(changed) > 0) != c.StoreChanged {
				t.Errorf("store changed: %v, want %v (%v)", changed, c.StoreChanged, c.StoreChangedKeys)
			}
		})
	}
}

type selectAuth0File struct {
	Vehicle vectortest.Vehicle `json:"vehicle"`
	Cases   []struct {
		Name              string                     `json:"name"`
		SourceFile        string                     `json:"source_file"`
		SourceTransaction string                     `json:"source_transaction"`
		Select            vectortest.Step            `json:"select"`
		Auth0             *vectortest.Step           `json:"auth0"`
		FastCandidates    []vectortest.FastCandidate `json:"fast_candidates"`
		ContinuesWith     string                     `json:"continues_with"`
		Outcome           vectortest.Outcome         `json:"outcome"`
		VehicleStoreAfter vectortest.Store           `json:"vehicle_store_after"`
	} `json:"cases"`
}

// The SELECT and AUTH0 cases are cut from full records: run the source record
// and compare the cut's SELECT, AUTH0, candidates, next step, outcome and store.
func TestVectorSelectAuth0(t *testing.T) {
	var f selectAuth0File
	vectortest.Load(t, "ccc_select_auth0.json", &f)
	sources := map[string]map[string]*vectortest.Record{}
	for i := range f.Cases {
		c := &f.Cases[i]
		t.Run(c.Name, func(t *testing.T) {
			recs, ok := sources[c.SourceFile]
			if !ok {
				recs = loadRecords(t, c.SourceFile)
				sources[c.SourceFile] = recs
			}
			rec := recs[c.SourceTransaction]
			if rec == nil {
				t.Fatalf("%s has no record %s", c.SourceFile, c.SourceTransaction)
			}
			got := replayVehicle(t, f.Vehicle, rec)
			cut := &vectortest.Record{Steps: []vectortest.Step{c.Select}, Outcome: c.Outcome, VehicleStoreAfter: c.VehicleStoreAfter}
			if c.Auth0 != nil {
				cut.Steps = append(cut.Steps, *c.Auth0)
			}
			cut.Derived.FastCandidates = c.FastCandidates
			var head []transaction.Step
			next := ""
			for _, s := range got.steps {
				if s.Command == "FAST" || len(head) < len(cut.Steps)+countFast(head) {
					head = append(head, s)
					continue
				}
				if next == "" {
					next = s.Command
				}
			}
			checkSteps(t, cut, head)
			checkOutcome(t, cut, replayed{outcome: got.outcome, store: got.store, checks: got.checks})
			if next != c.ContinuesWith {
				t.Errorf("continues with %q, want %q", next, c.ContinuesWith)
			}
		})
	}
}

func countFast(s []transaction.Step) int {
	n := 0
	for _, x := range s {
		if x.Command == "FAST" {
			n++
		}
	}
	return n
}

func loadRecords(t *testing.T, file string) map[string]*vectortest.Record {
	out := map[string]*vectortest.Record{}
	if file == "ccc_negative.json" {
		var f negativeFile
		vectortest.Load(t, file, &f)
		for i := range f.Cases {
			out[f.Cases[i].Name] = &f.Cases[i].Transaction
		}
		return out
	}
	var f positiveFile
	vectortest.Load(t, file, &f)
	for i := range f.Transactions {
		out[f.Transactions[i].Name] = &f.Transactions[i]
	}
	return out
}

func fixedNow(t testing.TB, s string) func() time.Time {
	now := vectortest.Time(t, s)
	return func() time.Time { return now }
}
