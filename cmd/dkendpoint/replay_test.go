package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/enrol"
	"github.com/dkvehicled/dkvehicled/internal/vectortest"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/transaction"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// vpcdReader plays the vpcd driver's side for cards that dial it, one at a
// time: it is the transaction engine's transceiver to the card, and keeps
// the commands it sent and the answers it got.
type vpcdReader struct {
	t        *testing.T
	ln       net.Listener
	conn     net.Conn
	commands [][]byte
	answers  [][]byte
}

func listenVPCD(t *testing.T) *vpcdReader {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &vpcdReader{t: t, ln: ln}
}

func (r *vpcdReader) Transceive(_ context.Context, c []byte) ([]byte, error) {
	if _, err := r.conn.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(c))), c...)); err != nil {
		return nil, err
	}
	var hdr [2]byte
	if _, err := io.ReadFull(r.conn, hdr[:]); err != nil {
		return nil, err
	}
	a := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(r.conn, a); err != nil {
		return nil, err
	}
	r.commands, r.answers = append(r.commands, c), append(r.answers, a)
	return a, nil
}

// tapWith runs dkendpoint with args (which lay a card on this reader), runs
// one transaction with the card, and returns its outcome and the card's JSON
// report.
func (r *vpcdReader) tapWith(e *transaction.Engine, role policy.Role, args ...string) (*transaction.Outcome, tapReport) {
	r.t.Helper()
	type result struct {
		code     int
		out, err bytes.Buffer
	}
	done := make(chan *result, 1)
	go func() {
		res := &result{}
		res.code = run(append(args, "-addr", r.ln.Addr().String(), "-json"), &res.out, &res.err)
		done <- res
	}()
	conn, err := r.ln.Accept()
	if err != nil {
		r.t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r.conn, r.commands, r.answers = conn, nil, nil
	o := e.Run(context.Background(), r, transaction.Request{Role: role, Locked: true})
	res := <-done
	if res.code != 0 {
		r.t.Fatalf("dkendpoint %v: exit %d: %s", args, res.code, res.err.String())
	}
	var rep tapReport
	if err := json.Unmarshal(res.out.Bytes(), &rep); err != nil {
		r.t.Fatalf("report %q: %v", res.out.String(), err)
	}
	return o, rep
}

// TestRecordAndReplay: 'tap -record' writes the tap's commands and answers;
// 'replay' answers each command with the recorded answer of the same index,
// whatever the command, and the vehicle refuses it; the phone's next tap
// works.
func TestRecordAndReplay(t *testing.T) {
	dir := t.TempDir()
	profiles, _ := policy.NewProfiles(policy.Defaults())
	vk, _ := keys.NewSigningKey(rand.Reader)
	vehicle := transaction.Vehicle{Profile: wire.CCC, Identifier: []byte("VEHICLE1"), Key: vk, Layout: wire.DefaultLayout, Profiles: profiles}
	st, err := keystore.Open(filepath.Join(dir, "store.db"), keystore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e, err := transaction.New(transaction.Config{Vehicle: vehicle, Store: st, Rand: rand.Reader, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	p := endpoint.New(wire.CCC, wire.CCC.Versions, wire.DefaultLayout, rand.Reader)
	slot := []byte("SLOT0001")
	k, err := p.NewOwnerKey(vehicle.Identifier, e.VehiclePK(), nil, slot)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(tx *keystore.Tx) error {
		_, err := enrol.Owner(tx, rand.Reader, time.Now(), vehicle.Layout, enrol.OwnerRecord{PublicKey: k.PK(), FriendlyName: "owner", SlotID: slot})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	state, rec := filepath.Join(dir, "owner.json"), filepath.Join(dir, "tap.json")
	if err := save(state, p); err != nil {
		t.Fatal(err)
	}
	r := listenVPCD(t)

	o, rep := r.tapWith(e, policy.RoleDoor, "tap", "-state", state, "-record", rec)
	if !o.Allowed() || rep.ControlFlow != "803c0100" {
		t.Fatalf("recorded tap: %s (%s), phone saw %+v", o.Result, o.Detail, rep)
	}
	if fi, err := os.Stat(rec); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("transcript file: %v", err)
	}
	b, _ := os.ReadFile(rec)
	var tr transcript
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Exchanges) != len(r.commands) {
		t.Fatalf("transcript of %d exchanges, the reader made %d", len(tr.Exchanges), len(r.commands))
	}
	for i, x := range tr.Exchanges {
		if x.Command != hex.EncodeToString(r.commands[i]) || x.Answer != hex.EncodeToString(r.answers[i]) {
			t.Fatalf("exchange %d recorded as %+v, the reader sent %x and got %x", i, x, r.commands[i], r.answers[i])
		}
	}
	var before *keystore.Snapshot
	st.View(func(tx *keystore.Tx) (err error) { before, err = tx.Snapshot(); return err })

	// The replayed tap: recorded answers in order, then 6F 00; refused.
	o, rep = r.tapWith(e, policy.RoleDoor, "replay", "-transcript", rec)
	if o.Allowed() || o.Reason != wire.ReasonProtocol || rep.ControlFlow != "803c0006" {
		t.Fatalf("replayed tap: %s reason %s (%s), card saw %+v", o.Result, o.Reason, o.Detail, rep)
	}
	if slices.EqualFunc(r.commands[:len(tr.Exchanges)], tr.Exchanges, func(c []byte, x exchange) bool { return hex.EncodeToString(c) == x.Command }) {
		t.Fatal("the vehicle sent the recorded commands again")
	}
	for i, a := range r.answers {
		want := []byte{0x6F, 0x00}
		if i < len(tr.Exchanges) {
			want, _ = hex.DecodeString(tr.Exchanges[i].Answer)
		}
		if !bytes.Equal(a, want) {
			t.Fatalf("answer %d to %x: %x, want %x", i, r.commands[i], a, want)
		}
	}
	var after *keystore.Snapshot
	st.View(func(tx *keystore.Tx) (err error) { after, err = tx.Snapshot(); return err })
	if d := vectortest.StoreDiff(vectortest.FromSnapshot(after), vectortest.FromSnapshot(before)); len(d) > 0 {
		t.Fatalf("the replay changed the store: %v", d)
	}

	// The phone itself still taps, on the fast path.
	if o, _ := r.tapWith(e, policy.RoleDoor, "tap", "-state", state); !o.Allowed() || o.Path != transaction.PathFast {
		t.Fatalf("the phone after the replay: %s %s (%s)", o.Result, o.Path, o.Detail)
	}

	for _, args := range [][]string{{"replay"}, {"replay", "-transcript", rec, "extra"}, {"tap", "-state", state, "-stay", "-record", rec}} {
		if code := run(args, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	os.WriteFile(rec, []byte(`{"exchanges":[{"command":"00","answer":"zz"}]}`), 0o600)
	if code := run([]string{"replay", "-transcript", rec, "-addr", r.ln.Addr().String()}, &bytes.Buffer{}, &bytes.Buffer{}); code != 1 {
		t.Errorf("replay of a bad transcript: exit %d, want 1", code)
	}
}
