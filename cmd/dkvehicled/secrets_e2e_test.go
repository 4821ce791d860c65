package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/internal/pki"
	"github.com/dkvehicled/dkvehicled/keystore"
)

// Secrets never reach the daemon's log, its control socket or its errors
// (README "The daemon", issue 7): every flow runs with log.level = "debug",
// everything the daemon says is captured, and afterwards every secret the
// run involved is gathered from the files and the store and searched for in
// every encoding a leak would take.

// The pairing passwords of TestSecretsNeverLeak. The client sends them; only
// what the daemon says counts.
const (
	secretPassFile  = "58203917" // the OEM's verifier file is derived from it
	secretPassWrong = "66140352" // typed once on the owner's phone: refused
	secretPassBench = "49027586" // the vehicle derives a verifier from it (bench)
	secretPassLeft  = "83716204" // its verifier is left in the store at the end
)

// captured is one text the daemon produced: where it came from and its bytes.
type captured struct {
	where string
	data  []byte
}

// secretCapture collects everything the daemon says during a test.
type secretCapture struct {
	mu    sync.Mutex
	parts []captured
}

func (c *secretCapture) add(where string, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parts = append(c.parts, captured{where: where, data: bytes.Clone(data)})
}

func (c *secretCapture) all() []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]captured(nil), c.parts...)
}

// count returns how many captured texts come from a source whose name starts
// with prefix.
func (c *secretCapture) count(prefix string) int {
	n := 0
	for _, p := range c.all() {
		if strings.HasPrefix(p.where, prefix) {
			n++
		}
	}
	return n
}

// recClient speaks the control protocol over a raw Unix-socket connection and
// records every line the daemon sends, exactly as it arrives.
type recClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	id   uint64
	cap  *secretCapture
}

func dialRec(t *testing.T, in *instance, capt *secretCapture) *recClient {
	t.Helper()
	conn, err := dialRaw(in.socket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &recClient{t: t, conn: conn, r: bufio.NewReader(conn), cap: capt}
}

// line sends one raw request line and returns the daemon's answer, decoded.
func (c *recClient) line(what, line string) control.Response {
	c.t.Helper()
	c.conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.conn.Write([]byte(line + "\n")); err != nil {
		c.t.Fatalf("%s: sending: %v", what, err)
	}
	raw, err := c.r.ReadBytes('\n')
	if len(raw) > 0 {
		c.cap.add("socket: answer to "+what, raw)
	}
	if err != nil {
		c.t.Fatalf("%s: reading the answer: %v", what, err)
	}
	var resp control.Response
	if err := json.Unmarshal(raw, &resp); err != nil {
		c.t.Fatalf("%s: the answer is not JSON: %v", what, err)
	}
	return resp
}

// do sends a well-formed request.
func (c *recClient) do(verb string, args any) control.Response {
	c.t.Helper()
	c.id++
	req := control.Request{ID: c.id, Verb: verb}
	if args != nil {
		raw, err := json.Marshal(args)
		if err != nil {
			c.t.Fatal(err)
		}
		req.Args = raw
	}
	line, err := json.Marshal(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp := c.line(verb, string(line))
	if resp.ID != c.id {
		c.t.Fatalf("%s: answer for request %d, want %d", verb, resp.ID, c.id)
	}
	return resp
}

// recCall runs a request that must succeed and decodes its result.
func recCall[T any](c *recClient, verb string, args any) T {
	c.t.Helper()
	resp := c.do(verb, args)
	if resp.Error != nil || !resp.OK {
		c.t.Fatalf("%s: %v", verb, resp.Error)
	}
	var out T
	if len(resp.Result) > 0 {
		if err := json.Unmarshal(resp.Result, &out); err != nil {
			c.t.Fatalf("%s result: %v", verb, err)
		}
	}
	return out
}

// recErr runs a request that must fail with code.
func recErr(c *recClient, code, verb string, args any) {
	c.t.Helper()
	resp := c.do(verb, args)
	if resp.Error == nil || resp.Error.Code != code {
		c.t.Fatalf("%s %+v: got ok=%v error %v, want %s", verb, args, resp.OK, resp.Error, code)
	}
}

func recTap(c *recClient, phone, reader string, drop *int) control.Event {
	c.t.Helper()
	return recCall[control.Event](c, control.VerbSimTap, control.SimPlaceArgs{Phone: phone, Reader: reader, DropAt: drop})
}

// recStream opens the event stream on a raw connection and records every
// line until the daemon closes it.
type recStream struct {
	mu     sync.Mutex
	events []control.Event
	done   chan struct{}
}

func openRecStream(t *testing.T, in *instance, capt *secretCapture) *recStream {
	conn, err := dialRaw(in.socket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte(`{"id":1,"verb":"events"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	s := &recStream{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		r := bufio.NewReader(conn)
		for {
			raw, err := r.ReadBytes('\n')
			if len(raw) > 0 {
				capt.add("event stream", raw)
				var resp control.Response
				if json.Unmarshal(raw, &resp) == nil && resp.Event != nil {
					s.mu.Lock()
					s.events = append(s.events, *resp.Event)
					s.mu.Unlock()
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *recStream) last() (n int, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.events) == 0 {
		return 0, 0
	}
	return len(s.events), s.events[len(s.events)-1].Seq
}

// TestSecretsNeverLeak runs every flow of the daemon at debug level (owner
// pairing with a verifier file and a wrong password, an owner change with a
// verifier derived from a password, pairings and taps pulled away, standard
// and fast door taps, engine start with slot provisioning, an offline share
// and the friend's first use, suspend/resume, revocation, slot revocation,
// bad requests, the event stream, the audit log, metrics, status and the
// lists), captures the daemon's whole stderr, every raw line it sent on the
// socket, the event stream, the errors the client library returned and the
// audit log in the store, then gathers every secret and searches for it.
func TestSecretsNeverLeak(t *testing.T) {
	// Debug level; and APDU timeouts long enough for the phones' scrypt in
	// the race-enabled build, so that pairings fail only where the test
	// pulls the phone away.
	dir := newDir(t, func(s string) string {
		for _, r := range [][2]string{
			{`level = "info"`, `level = "debug"`},
			{`apdu = "500ms"`, `apdu = "5s"`},
			{`long = "1s"`, `long = "5s"`},
			{`transaction = "2s"`, `transaction = "8s"`},
		} {
			if !strings.Contains(s, r[0]) {
				t.Fatalf("simulator.toml lacks %s", r[0])
			}
			s = strings.Replace(s, r[0], r[1], 1)
		}
		return s
	})
	in := start(t, dir)
	capt := &secretCapture{}
	c := dialRec(t, in, capt)

	// Follow the event stream from the start: it is open once it delivers
	// a switch flip.
	stream := openRecStream(t, in, capt)
	for i := 0; ; i++ {
		if n, _ := stream.last(); n > 0 {
			break
		}
		if i == 100 {
			t.Fatal("the event stream delivers nothing")
		}
		recCall[control.Status](c, control.VerbDigitalKey, control.SwitchArgs{Enabled: true})
		time.Sleep(20 * time.Millisecond)
	}

	// The errors the client library returns, recorded as a program sees them.
	std := in.client()
	stdErr := func(verb string, args any) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		var out json.RawMessage
		err := std.Call(ctx, verb, args, &out)
		if err == nil {
			t.Fatalf("%s %v: no error", verb, args)
		}
		if errors.Is(err, control.ErrClosed) {
			t.Fatalf("%s: the daemon hung up: %v", verb, err)
		}
		capt.add("error returned by control.Client for "+verb, []byte(err.Error()))
	}

	// The OEM's verifier file, and files that are wrong in ways that tempt
	// an error message to quote them.
	vf, err := pki.NewVerifier(rand.Reader, secretPassFile, pki.MinScryptN)
	if err != nil {
		t.Fatal(err)
	}
	vpath := filepath.Join(dir, "verifier.json")
	if err := pki.WriteVerifier(vpath, vf); err != nil {
		t.Fatal(err)
	}
	fileBytes, err := os.ReadFile(vpath)
	if err != nil {
		t.Fatal(err)
	}
	file := string(fileBytes)
	w0hex, lhex := hex.EncodeToString(vf.W0.Expose()), hex.EncodeToString(vf.L.Expose())
	if !strings.Contains(file, w0hex) || !strings.Contains(file, lhex) {
		t.Fatal("the verifier file does not hold w0 and L in hex")
	}
	badFiles := map[string]string{
		"extra field":       strings.Replace(file, "{", `{"extra": "`+w0hex+`",`, 1),
		"truncated":         file[:len(file)/2],
		"L is w0":           strings.Replace(file, lhex, w0hex, 1),
		"w0 is L":           strings.Replace(file, w0hex, lhex, 1),
		"n is a string":     strings.Replace(file, `"n": 4096`, `"n": "`+w0hex+`"`, 1),
		"trailing data":     file + w0hex,
		"w0 is not hex":     strings.Replace(file, w0hex, "zz"+w0hex[2:], 1),
		"w0 is a number":    strings.Replace(file, `"`+w0hex+`"`, "1"+strings.Repeat("0", 40), 1),
		"not JSON, w0 only": w0hex,
	}
	names := make([]string, 0, len(badFiles))
	for name := range badFiles {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if badFiles[name] == file {
			t.Fatalf("bad verifier file %q is the good one", name)
		}
		recErr(c, control.CodeBadRequest, control.VerbPairingVerifier, control.VerifierArgs{File: badFiles[name]})
		stdErr(control.VerbPairingVerifier, control.VerifierArgs{File: badFiles[name]})
	}
	recErr(c, control.CodeBadRequest, control.VerbPairingVerifier, control.VerifierArgs{File: file, Password: secretPassFile})
	for _, args := range []string{
		`{"password":` + secretPassBench + `}`,
		`{"password":"` + secretPassBench + `","extra":"` + secretPassBench + `"}`,
		`{"file":{"w0":"` + w0hex + `"}}`,
		`{"file":` + strconv.Quote(file) + `,"password":["` + secretPassBench + `"]}`,
		`{"password":"` + secretPassBench[:7] + `"}`,
	} {
		stdErr(control.VerbPairingVerifier, json.RawMessage(args))
	}
	c.line("a malformed pairing.verifier", `{"id":99,"verb":"pairing.verifier","args":{"password":"`+secretPassBench+`"}`)
	c.line("a malformed pairing.verifier", `{"id":99,"verb":"pairing.verifier","args":{"file":`+strconv.Quote(file)+`,}}`)

	// Owner pairing with the verifier file: one wrong password, then the
	// right one.
	recCall[control.SimPhone](c, control.VerbSimNewPhone, control.SimPhoneArgs{Phone: "owner"})
	if st := recCall[control.PairingStatus](c, control.VerbPairingVerifier, control.VerifierArgs{File: file}); !st.Verifier || st.AttemptsLeft != 7 {
		t.Fatalf("verifier from the file: %+v", st)
	}
	recCall[control.PairingStatus](c, control.VerbPairingStart, control.PairingStartArgs{})
	recCall[control.SimPhone](c, control.VerbSimPassword, control.SimPasswordArgs{Phone: "owner", Password: secretPassWrong})
	expectPairing(t, recTap(c, "owner", "dashboard", nil), "failed", "confirmation_mismatch")
	recCall[control.SimPhone](c, control.VerbSimPassword, control.SimPasswordArgs{Phone: "owner", Password: secretPassFile})
	ev := recTap(c, "owner", "dashboard", nil)
	expectPairing(t, ev, "paired", "")
	owner := ev.KeyID

	// The owner's taps: standard, fast, engine start with slot provisioning.
	expect(t, recTap(c, "owner", "door", nil), "allowed", "unlock", "standard", "")
	expect(t, recTap(c, "owner", "door", nil), "allowed", "lock", "fast", "")
	ev = recTap(c, "owner", "dashboard", nil)
	expect(t, ev, "allowed", "engine_start", "standard", "")
	if ev.Provisioned != 7 {
		t.Fatalf("engine start provisioned %d entries", ev.Provisioned)
	}

	// An offline share and the friend's first use; refused at the engine.
	recCall[control.SimPhone](c, control.VerbSimNewPhone, control.SimPhoneArgs{Phone: "alice"})
	sh := recCall[control.SimShare](c, control.VerbSimShare, control.SimShareArgs{From: "owner", To: "alice", Profile: 1, Name: "Alice"})
	ev = recTap(c, "alice", "door", nil)
	expect(t, ev, "allowed", "unlock", "standard+friend_first_use", "")
	expect(t, recTap(c, "alice", "dashboard", nil), "denied", "engine_start", "standard", "not_permitted")
	// Suspended, refused; resumed, allowed on the fast path; revoked, refused.
	recCall[control.Key](c, control.VerbKeysSuspend, control.KeyArgs{KeyID: sh.FriendKey})
	if ev := recTap(c, "alice", "door", nil); ev.Result != "denied" || ev.Actuated {
		t.Fatalf("suspended friend: %+v", ev)
	}
	recCall[control.Key](c, control.VerbKeysResume, control.KeyArgs{KeyID: sh.FriendKey})
	if ev := recTap(c, "alice", "door", nil); ev.Result != "allowed" || !ev.Actuated {
		t.Fatalf("resumed friend: %+v", ev)
	}
	recCall[control.Key](c, control.VerbKeysRename, control.RenameArgs{KeyID: sh.FriendKey, Name: "Alice B."})
	recCall[control.Key](c, control.VerbKeysWindow, control.WindowArgs{KeyID: sh.FriendKey, NotAfter: time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)})
	recCall[control.Key](c, control.VerbKeysProfile, control.ProfileArgs{KeyID: sh.FriendKey, Profile: 3})
	recCall[control.Key](c, control.VerbKeysRevoke, control.KeyArgs{KeyID: sh.FriendKey[:12]})
	expect(t, recTap(c, "alice", "door", nil), "denied", "unlock", "standard", "key_not_valid")

	// Taps that fail: the phone pulled away at each command.
	for drop := 0; drop < 6; drop++ {
		ev := recTap(c, "owner", "door", &drop)
		if drop == 0 && (ev.Result != "error" || ev.Actuated) {
			t.Fatalf("pulled away at SELECT: %+v", ev)
		}
	}
	expectTap(t, recTap(c, "owner", "door", nil), "allowed", "fast", "")

	// Bad requests, each answered with an error; the connection stays.
	for _, bad := range []struct{ code, line string }{
		{control.CodeBadRequest, `{"id":1,"verb":`},
		{control.CodeBadRequest, `not json at all`},
		{control.CodeBadRequest, "\x00\x01\xff\xfe"},
		{control.CodeBadRequest, `{"id":"one","verb":"status"}`},
		{control.CodeBadRequest, `{"id":1}`},
		{control.CodeUnknownVerb, `{"id":2,"verb":"launch.missiles"}`},
		{control.CodeUnknownVerb, `{"id":2,"verb":"pairing.reveal"}`},
		{control.CodeUnknownVerb, `{"id":2,"verb":"sim.dump"}`},
		{control.CodeBadRequest, `{"id":3,"verb":"keys.show","args":{"key_id":12345678}}`},
		{control.CodeBadRequest, `{"id":3,"verb":"keys.show","args":{"key_id":"zz"}}`},
		{control.CodeUnknownKey, `{"id":3,"verb":"keys.revoke","args":{"key_id":"0123456789abcdef"}}`},
		{control.CodeBadRequest, `{"id":4,"verb":"keys.rename","args":{"key_id":"` + owner + `","name":"` + strings.Repeat("x", 40) + `"}}`},
		{control.CodeBadRequest, `{"id":4,"verb":"keys.set_window","args":{"key_id":"` + owner + `","not_after":"tomorrow"}}`},
		{control.CodeNotPermitted, `{"id":4,"verb":"keys.set_profile","args":{"key_id":"` + owner + `","profile":1}}`},
		{control.CodeBadRequest, `{"id":5,"verb":"slots.revoke","args":{"slot":"zz"}}`},
		{control.CodeUnknownKey, `{"id":6,"verb":"sim.tap","args":{"phone":"mallory","reader":"door"}}`},
		{control.CodeUnknownKey, `{"id":6,"verb":"sim.tap","args":{"phone":"owner","reader":"trunk"}}`},
		{control.CodeBadRequest, `{"id":6,"verb":"sim.tap","args":{"phone":"owner","reader":"door","drop_at":-1}}`},
		{control.CodeBadRequest, `{"id":6,"verb":"sim.tap","args":{"phone":["owner"],"reader":1}}`},
		{control.CodeUnknownKey, `{"id":7,"verb":"sim.pairing_password","args":{"phone":"mallory","password":"` + secretPassBench + `"}}`},
		{control.CodeBadRequest, `{"id":7,"verb":"sim.pairing_password","args":{"phone":"owner","password":` + secretPassBench + `}}`},
		{control.CodeUnknownKey, `{"id":8,"verb":"sim.share","args":{"from":"alice","to":"mallory","profile":1,"name":"x"}}`},
		{control.CodeDisabled, `{"id":9,"verb":"enrol.owner","args":{"public_key":"04","name":"x"}}`},
		{control.CodeBadRequest, `{"id":10,"verb":"audit","args":{"limit":"all"}}`},
		{control.CodeNotPermitted, `{"id":11,"verb":"keys.suspend","args":{"key_id":"` + sh.FriendKey + `"}}`},
	} {
		resp := c.line("a bad request", bad.line)
		if resp.Error == nil || resp.Error.Code != bad.code {
			t.Fatalf("%q: got %+v, want %s", bad.line, resp, bad.code)
		}
	}
	stdErr("launch.missiles", nil)
	stdErr(control.VerbKeysShow, control.KeyArgs{KeyID: "zz"})
	stdErr(control.VerbSimTap, control.SimPlaceArgs{Phone: "mallory", Reader: "door"})
	stdErr(control.VerbSimPassword, control.SimPasswordArgs{Phone: "mallory", Password: secretPassBench})
	// A line over the limit ends its own connection.
	huge := dialRec(t, in, capt)
	huge.conn.SetDeadline(time.Now().Add(20 * time.Second))
	go huge.conn.Write([]byte(`{"id":1,"verb":"pairing.verifier","args":{"file":"` + strings.Repeat(w0hex, 4096) + `"}}` + "\n"))
	if raw, _ := huge.r.ReadBytes('\n'); len(raw) > 0 {
		capt.add("socket: answer to a line over the limit", raw)
	}

	// The car is sold: an owner change with a verifier the vehicle derives
	// from a password, after two pairings pulled away before GET DATA.
	recCall[control.SimPhone](c, control.VerbSimNewPhone, control.SimPhoneArgs{Phone: "buyer"})
	recCall[control.PairingStatus](c, control.VerbPairingVerifier, control.VerifierArgs{Password: secretPassBench})
	recCall[control.PairingStatus](c, control.VerbPairingStart, control.PairingStartArgs{})
	recCall[control.SimPhone](c, control.VerbSimPassword, control.SimPasswordArgs{Phone: "buyer", Password: secretPassBench})
	for _, drop := range []int{2, 3} {
		expectPairing(t, recTap(c, "buyer", "dashboard", &drop), "error", "")
	}
	ev = recTap(c, "buyer", "dashboard", nil)
	expectPairing(t, ev, "paired", "")
	buyer := ev.KeyID
	ev = recTap(c, "buyer", "dashboard", nil)
	expect(t, ev, "allowed", "engine_start", "standard", "")
	if ev.Provisioned != 7 {
		t.Fatalf("the buyer's first engine start provisioned %d entries", ev.Provisioned)
	}
	expectTap(t, recTap(c, "buyer", "door", nil), "allowed", "fast", "")
	expectTap(t, recTap(c, "owner", "door", nil), "denied", "standard", "key_not_valid")
	// One of the buyer's issued slots revoked.
	var issued string
	for _, s := range recCall[[]control.Slot](c, control.VerbSlotsList, nil) {
		if s.State == "issued" && s.IssuedTo == buyer {
			issued = s.Slot
		}
	}
	if issued == "" {
		t.Fatal("the buyer has no issued slot")
	}
	recCall[control.Slot](c, control.VerbSlotsRevoke, control.SlotArgs{Slot: issued})
	// A pairing verifier left in the store, and the switches.
	if st := recCall[control.PairingStatus](c, control.VerbPairingVerifier, control.VerifierArgs{Password: secretPassLeft}); !st.Verifier {
		t.Fatalf("verifier: %+v", st)
	}
	recCall[control.PairingStatus](c, control.VerbPairingStart, control.PairingStartArgs{TimeoutS: 60})
	recCall[control.PairingStatus](c, control.VerbPairingCancel, nil)
	recCall[control.Status](c, control.VerbDigitalKey, control.SwitchArgs{Enabled: false, Reason: "valet"})
	recCall[control.Status](c, control.VerbDigitalKey, control.SwitchArgs{Enabled: true})
	recCall[control.Status](c, control.VerbReaderEnable, control.ReaderEnableArgs{Reader: "door", Enabled: false})
	recCall[control.Status](c, control.VerbReaderEnable, control.ReaderEnableArgs{Reader: "door", Enabled: true})

	// Everything there is to read.
	recCall[control.Status](c, control.VerbStatus, nil)
	recCall[control.VehicleInfo](c, control.VerbVehicle, nil)
	recCall[[]control.Profile](c, control.VerbProfiles, nil)
	recCall[control.PairingStatus](c, control.VerbPairingStatus, nil)
	recCall[[]control.SimPhone](c, control.VerbSimPhones, nil)
	recCall[control.Metrics](c, control.VerbMetrics, nil)
	if chk := recCall[control.StoreCheck](c, control.VerbStoreCheck, nil); len(chk.Problems) != 0 {
		t.Errorf("store check: %v", chk.Problems)
	}
	keyList := recCall[[]control.Key](c, control.VerbKeysList, nil)
	if len(keyList) != 3 {
		t.Fatalf("keys %+v", keyList)
	}
	for _, k := range keyList {
		recCall[control.Key](c, control.VerbKeysShow, control.KeyArgs{KeyID: k.KeyID})
	}
	recCall[[]control.Slot](c, control.VerbSlotsList, nil)
	audit := recCall[[]control.AuditEntry](c, control.VerbAudit, control.AuditArgs{Limit: 10000})
	lastSeq := audit[len(audit)-1].Event.Seq
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, seq := stream.last(); seq >= lastSeq {
			break
		}
		if time.Now().After(deadline) {
			_, seq := stream.last()
			t.Fatalf("the event stream stopped at event %d, the audit log has %d", seq, lastSeq)
		}
	}
	if owner == buyer || owner == "" {
		t.Fatalf("owner %s, buyer %s", owner, buyer)
	}

	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	<-stream.done // the daemon closed the stream
	capt.add("daemon stderr", []byte(in.log()))

	// The audit log as the store keeps it.
	st, err := keystore.Open(filepath.Join(dir, "store.db"), keystore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var auditRecs int
	err = st.View(func(tx *keystore.Tx) error {
		recs, err := tx.Audit(1 << 20)
		for _, r := range recs {
			capt.add("audit log in the store", r.Data)
		}
		auditRecs = len(recs)
		return err
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	// The capture is not empty: the scan below means something.
	stderr := in.log()
	for _, want := range []string{"level=DEBUG", `msg=transaction`, `msg="control: request failed"`, `msg="control: bad request"`, "type=pairing", "outcome=paired"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the daemon's debug log lacks %s", want)
		}
	}
	nStream, _ := stream.last()
	t.Logf("captured: %d bytes of stderr, %d socket answers, %d streamed events, %d client errors, %d audit entries",
		len(stderr), capt.count("socket:"), nStream, capt.count("error returned"), auditRecs)
	if capt.count("socket:") < 90 || nStream < 40 || capt.count("error returned") < 15 || auditRecs < 40 {
		t.Fatal("too little was captured")
	}

	// A positive control on the real capture: the vehicle's public key,
	// which vehicle.show gives, is found like a leak would be.
	pub := recPublicKey(t, filepath.Join(dir, "vehicle.key"))
	if hits := scanForSecrets([]secretValue{{"the vehicle public key", pub}}, capt.all()); len(hits) == 0 {
		t.Fatal("the scanner does not find the vehicle public key the daemon gave on the socket")
	}

	secrets := gatherSecrets(t, dir, vpath, []string{secretPassFile, secretPassWrong, secretPassBench, secretPassLeft})
	leaks := scanForSecrets(secrets, capt.all())
	for _, l := range leaks {
		t.Error(l)
	}
	if len(leaks) == 0 {
		t.Logf("no leak: %d secrets searched for in %d captured texts", len(secrets), len(capt.all()))
	}
}

// expectTap checks a door tap whose action depends on the lock state.
func expectTap(t *testing.T, ev control.Event, result, path, reason string) {
	t.Helper()
	if ev.Type != "tap" || ev.Result != result || ev.Path != path || ev.Reason != reason || ev.Actuated != (result == "allowed") {
		t.Fatalf("tap at %s: got %s %s path %s reason %q actuated %v (%s); want %s path %s reason %q",
			ev.Reader, ev.Result, ev.Action, ev.Path, ev.Reason, ev.Actuated, ev.Detail, result, path, reason)
	}
}

// recPublicKey returns the uncompressed public key of a PKCS#8 key file.
func recPublicKey(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s is not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.(*ecdsa.PrivateKey).PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// secretValue is one secret and what it is (the name is printed, the value
// never).
type secretValue struct {
	name  string
	value []byte
}

// gatherSecrets collects every secret of a finished run in dir and checks
// that all the kinds expected are there, in the numbers expected.
func gatherSecrets(t *testing.T, dir, verifierFile string, passwords []string) []secretValue {
	t.Helper()
	var out []secretValue
	counts := map[string]int{}
	add := func(kind, name string, v []byte, size int) {
		t.Helper()
		if size > 0 && len(v) != size {
			t.Fatalf("%s: %d bytes, want %d", name, len(v), size)
		}
		if len(v) < 8 {
			t.Fatalf("%s: %d bytes: too short to search for", name, len(v))
		}
		counts[kind]++
		out = append(out, secretValue{name: name, value: bytes.Clone(v)})
	}
	scalarOf := func(path string) []byte {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s is not PEM", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			t.Fatalf("%s: not an ECDSA key", path)
		}
		d, err := ek.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	add("vehicle key", "the vehicle private key (vehicle.key)", scalarOf(filepath.Join(dir, "vehicle.key")), 32)
	caKeys, err := filepath.Glob(filepath.Join(dir, "pki", "*.key"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(caKeys)
	for _, p := range caKeys {
		add("bench CA key", "the bench CA private key "+filepath.Base(p), scalarOf(p), 32)
	}
	for _, p := range passwords {
		add("pairing password", "a pairing password", []byte(p), 8)
	}
	v, err := pki.ReadVerifier(verifierFile)
	if err != nil {
		t.Fatal(err)
	}
	add("verifier file", "w0 of the verifier file", v.W0.Expose(), 32)
	add("verifier file", "L of the verifier file", v.L.Expose(), 65)

	// The simulated phones (sim-phones.json): their private keys,
	// Kpersistent and the device PKI's instance CA key.
	b, err := os.ReadFile(filepath.Join(dir, "sim-phones.json"))
	if err != nil {
		t.Fatal(err)
	}
	type savedKey struct {
		SK          string `json:"sk"`
		Kpersistent string `json:"kpersistent"`
	}
	var phones map[string]struct {
		Keys      []savedKey `json:"keys"`
		Pending   []savedKey `json:"pending"`
		DevicePKI *struct {
			InstanceCASK string `json:"instance_ca_sk"`
		} `json:"device_pki"`
	}
	if err := json.Unmarshal(b, &phones); err != nil {
		t.Fatal(err)
	}
	unhex := func(name, s string) []byte {
		t.Helper()
		v, err := hex.DecodeString(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	phoneKp := map[string]bool{}
	names := make([]string, 0, len(phones))
	for n := range phones {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := phones[n]
		for i, k := range append(p.Keys, p.Pending...) {
			what := fmt.Sprintf("phone %s key %d", n, i)
			add("phone private key", "the private key of "+what, unhex(what, k.SK), 32)
			if k.Kpersistent != "" {
				kp := unhex(what, k.Kpersistent)
				add("phone Kpersistent", "Kpersistent of "+what, kp, 32)
				phoneKp[string(kp)] = true
			}
		}
		if p.DevicePKI != nil {
			add("phone instance CA key", "the instance CA key of phone "+n, unhex(n, p.DevicePKI.InstanceCASK), 32)
		}
	}

	// The store: Kpersistent and LTSS of every key, every immobilizer
	// token, the verifier left in it.
	st, err := keystore.Open(filepath.Join(dir, "store.db"), keystore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.View(func(tx *keystore.Tx) error {
		eps, err := tx.Endpoints()
		if err != nil {
			return err
		}
		for _, e := range eps {
			if kp := e.Kpersistent.Expose(); len(kp) > 0 {
				add("store Kpersistent", "the store's Kpersistent of key "+e.KeyID.String(), kp, 32)
				// Both sides agree on an active key's Kpersistent (a
				// phone refused after a standard transaction keeps its
				// new one alone): the files were read right.
				if e.State == keystore.StateActive && !phoneKp[string(kp)] {
					t.Errorf("the store's Kpersistent of active key %s is on no phone", e.KeyID)
				}
			}
			if l := e.LTSS.Expose(); len(l) > 0 {
				add("store LTSS", "the store's LTSS of key "+e.KeyID.String(), l, 0)
			}
		}
		slots, err := tx.Slots()
		if err != nil {
			return err
		}
		for _, s := range slots {
			if tok := s.Token.Expose(); len(tok) > 0 {
				add("immobilizer token", fmt.Sprintf("the immobilizer token of slot %x", s.ID), tok, 16)
			}
		}
		v, err := tx.Verifier()
		if err != nil {
			return err
		}
		if v != nil {
			add("store verifier", "w0 of the store's verifier", v.W0.Expose(), 32)
			add("store verifier", "L of the store's verifier", v.L.Expose(), 65)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// What the run must have left: three phones (owner, alice, buyer), each
	// with one key, its Kpersistent and the instance CA key; in the store,
	// the three keys' Kpersistent and the two owners' LTSS; the slots of two
	// owners, each its own slot and 7 provisioned entries; the verifier of
	// the last password.
	want := map[string]int{
		"vehicle key": 1, "bench CA key": 3, "pairing password": 4, "verifier file": 2,
		"phone private key": 3, "phone Kpersistent": 3, "phone instance CA key": 3,
		"store Kpersistent": 3, "store LTSS": 2, "immobilizer token": 16, "store verifier": 2,
	}
	total := 0
	for kind, n := range want {
		total += n
		if counts[kind] != n {
			t.Errorf("gathered %d secrets of kind %q, want %d", counts[kind], kind, n)
		}
	}
	for kind := range counts {
		if _, ok := want[kind]; !ok {
			t.Errorf("unexpected kind of secret %q", kind)
		}
	}
	if len(out) != total {
		t.Fatalf("gathered %d secrets, want %d", len(out), total)
	}
	return out
}

// secretPattern is one rendering of a secret a leak could take.
type secretPattern struct {
	encoding string
	text     []byte
}

// secretPatterns returns every rendering of v worth searching for: the raw
// bytes, hex in both cases (plain and spaced), base64 in the standard and
// URL alphabets at each of the three alignments a secret can have inside a
// longer base64 text, Go and JSON string quoting, the decimal integer (a
// big.Int printed) and Go's byte-slice formatting.
func secretPatterns(v []byte) []secretPattern {
	var out []secretPattern
	seen := map[string]bool{}
	add := func(enc string, text []byte) {
		if len(text) < 8 || seen[string(text)] {
			return
		}
		seen[string(text)] = true
		out = append(out, secretPattern{enc, text})
	}
	add("raw bytes", v)
	add("lowercase hex", []byte(hex.EncodeToString(v)))
	add("uppercase hex", []byte(strings.ToUpper(hex.EncodeToString(v))))
	add("spaced hex", []byte(fmt.Sprintf("% x", v)))
	add("spaced uppercase hex", []byte(fmt.Sprintf("% X", v)))
	for skip := 0; skip < 3; skip++ {
		// The secret begins skip bytes before a 3-byte group boundary of
		// the base64 text around it; only whole groups inside it are fixed.
		core := v[min(skip, len(v)):]
		core = core[:len(core)/3*3]
		if len(core) < 6 {
			continue
		}
		add(fmt.Sprintf("base64 (std, offset %d)", skip), []byte(base64.RawStdEncoding.EncodeToString(core)))
		add(fmt.Sprintf("base64 (raw url, offset %d)", skip), []byte(base64.RawURLEncoding.EncodeToString(core)))
	}
	add("Go-quoted string", []byte(strings.Trim(strconv.Quote(string(v)), `"`)))
	if j, err := json.Marshal(string(v)); err == nil {
		add("JSON string", bytes.Trim(j, `"`))
	}
	add("decimal integer", []byte(new(big.Int).SetBytes(v).String()))
	add("Go byte list", []byte(strings.Trim(fmt.Sprint(v), "[]")))
	return out
}

// scanForSecrets returns one line per secret found in a captured text: which
// secret, in which encoding, where (source and line). It never includes the
// secret itself.
func scanForSecrets(secrets []secretValue, texts []captured) []string {
	var leaks []string
	for _, s := range secrets {
		for _, p := range secretPatterns(s.value) {
			// A number that merely contains the digits of a numeric
			// secret (a timestamp, a sequence number) is not a leak of it.
			digits := p.encoding == "raw bytes" && isDigits(p.text)
			for _, txt := range texts {
				for from := 0; ; {
					i := bytes.Index(txt.data[from:], p.text)
					if i < 0 {
						break
					}
					i += from
					from = i + 1
					if digits && (i > 0 && isDigit(txt.data[i-1]) || i+len(p.text) < len(txt.data) && isDigit(txt.data[i+len(p.text)])) {
						continue
					}
					line := 1 + bytes.Count(txt.data[:i], []byte("\n"))
					leaks = append(leaks, fmt.Sprintf("LEAK: %s found as %s in %s (line %d, byte %d)", s.name, p.encoding, txt.where, line, i))
					break
				}
			}
		}
	}
	return leaks
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func isDigits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return len(b) > 0
}

// TestSecretScannerFindsPlantedSecrets proves the scanner of
// TestSecretsNeverLeak finds a secret in each encoding, wherever it sits in a
// longer text, says where, never prints it, and stays silent on clean text.
func TestSecretScannerFindsPlantedSecrets(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	token := make([]byte, 16)
	rand.Read(token)
	secrets := []secretValue{{"planted key", key}, {"planted token", token}, {"planted password", []byte("27390415")}}
	other := make([]byte, 32)
	rand.Read(other)

	clean := []captured{{"clean", []byte("time=2026-01-02T03:04:05.123456789Z level=INFO msg=event seq=127390415 took=273904150ns key_id=" +
		hex.EncodeToString(other) + " blob=" + base64.StdEncoding.EncodeToString(other) + "\n")}}
	if leaks := scanForSecrets(secrets, clean); len(leaks) != 0 {
		t.Fatalf("leaks found in clean text: %v", leaks)
	}

	filler := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	for _, s := range secrets {
		var plants []captured
		plant := func(enc string, text []byte) {
			data := append([]byte("line one\nline two: "), text...)
			data = append(data, " and more\n"...)
			plants = append(plants, captured{where: "planted as " + enc, data: data})
		}
		v := s.value
		plant("raw bytes", v)
		plant("lowercase hex", []byte(hex.EncodeToString(v)))
		plant("uppercase hex", []byte(strings.ToUpper(hex.EncodeToString(v))))
		plant("hex inside a longer hex string", []byte(hex.EncodeToString(append(append(filler(7), v...), filler(5)...))))
		plant("spaced hex", []byte(fmt.Sprintf("% x", v)))
		for pre := 0; pre < 3; pre++ {
			for post := 0; post < 3; post++ {
				inner := append(append(filler(pre), v...), filler(post)...)
				plant(fmt.Sprintf("base64 std, %d+%d bytes around", pre, post), []byte(base64.StdEncoding.EncodeToString(inner)))
				plant(fmt.Sprintf("base64 raw url, %d+%d bytes around", pre, post), []byte(base64.RawURLEncoding.EncodeToString(inner)))
			}
		}
		plant("JSON []byte", func() []byte { b, _ := json.Marshal(struct{ K []byte }{v}); return b }())
		plant("Go %q", []byte(fmt.Sprintf("%q", v)))
		plant("JSON string", func() []byte { b, _ := json.Marshal(string(v)); return b }())
		plant("Go %v of []byte", []byte(fmt.Sprintf("%v", v)))
		plant("Go %v of a big.Int", []byte(fmt.Sprintf("%v", new(big.Int).SetBytes(v))))
		plant("slog text value", []byte("k="+strconv.Quote(string(v))))

		leaks := scanForSecrets([]secretValue{s}, plants)
		found := map[string]bool{}
		for _, l := range leaks {
			for _, p := range plants {
				if strings.Contains(l, " in "+p.where+" (line 2,") {
					found[p.where] = true
				}
			}
			// The report names the secret and never prints it.
			if !strings.Contains(l, s.name) {
				t.Errorf("a leak report does not name the secret: %s", l)
			}
			for _, p := range secretPatterns(v) {
				if bytes.Contains([]byte(l), p.text) {
					t.Errorf("a leak report prints %s as %s", s.name, p.encoding)
				}
			}
		}
		for _, p := range plants {
			if !found[p.where] {
				t.Errorf("%s %s: not found", s.name, p.where)
			}
		}
		// Another secret is not reported for these texts.
		if leaks := scanForSecrets([]secretValue{{"another key", other}}, plants); len(leaks) != 0 {
			t.Errorf("a secret that was never planted was found: %v", leaks)
		}
	}
}
