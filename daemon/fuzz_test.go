package daemon

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/config"
	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/internal/pki"
)

// fuzzVerbs are the verbs that take arguments, with the type each decodes
// them into. The sim verbs that place phones on readers or tap are left
// out: they wait for reader loops this test does not run.
var fuzzVerbs = []struct {
	verb string
	args any
}{
	{control.VerbAudit, control.AuditArgs{}},
	{control.VerbKeysShow, control.KeyArgs{}},
	{control.VerbKeysRevoke, control.KeyArgs{}},
	{control.VerbKeysSuspend, control.KeyArgs{}},
	{control.VerbKeysResume, control.KeyArgs{}},
	{control.VerbKeysRename, control.RenameArgs{}},
	{control.VerbKeysProfile, control.ProfileArgs{}},
	{control.VerbKeysWindow, control.WindowArgs{}},
	{control.VerbSlotsRevoke, control.SlotArgs{}},
	{control.VerbDigitalKey, control.SwitchArgs{}},
	{control.VerbReaderEnable, control.ReaderEnableArgs{}},
	{control.VerbPairingVerifier, control.VerifierArgs{}},
	{control.VerbPairingStart, control.PairingStartArgs{}},
	{control.VerbEnrolOwner, control.EnrolArgs{}},
	{control.VerbSimPassword, control.SimPasswordArgs{}},
	{control.VerbSimRemove, control.SimReaderArgs{}},
}

// FuzzHandleArgs sends every verb that takes arguments arbitrary (valid
// JSON) arguments through the daemon's Handle, as the control socket
// delivers them. Arguments that do not decode into the verb's type (no
// unknown fields) are refused with bad_request naming the verb, before
// anything happens; every failure is an *control.Error, never an internal
// error; and no answer shows the pairing password or the verifier's w0
// and L that the arguments carried.
func FuzzHandleArgs(f *testing.F) {
	d := fuzzDaemon(f)
	pw := "24681357"
	ver, err := pki.NewVerifier(rand.Reader, pw, 4096)
	if err != nil {
		f.Fatal(err)
	}
	file, err := json.Marshal(map[string]any{"w0": fmt.Sprintf("%x", ver.W0.Expose()), "L": fmt.Sprintf("%x", ver.L.Expose()),
		"salt": fmt.Sprintf("%x", ver.Salt), "n": ver.N, "r": 8, "p": 1})
	if err != nil {
		f.Fatal(err)
	}
	secrets := []string{pw, fmt.Sprintf("%x", ver.W0.Expose())[:16], fmt.Sprintf("%x", ver.L.Expose())[2:18]}
	fileArg, _ := json.Marshal(control.VerifierArgs{File: string(file)})
	for i, v := range fuzzVerbs {
		f.Add(byte(i), []byte(`{}`))
		f.Add(byte(i), []byte(`{"unknown":1}`))
		f.Add(byte(i), []byte(`[]`))
		f.Add(byte(i), []byte(`null`))
		b, _ := json.Marshal(v.args)
		f.Add(byte(i), b)
	}
	f.Add(byte(11), []byte(`{"password":"`+pw+`"}`))
	f.Add(byte(11), []byte(`{"password":`+pw+`}`))
	f.Add(byte(11), []byte(`{"password":"`+pw+`","file":"x"}`))
	f.Add(byte(11), fileArg)
	f.Add(byte(11), bytes.Replace(fileArg, []byte(`\"n\":4096`), []byte(`\"n\":4095`), 1))
	f.Add(byte(11), bytes.Replace(fileArg, []byte(`\"w0\":\"`), []byte(`\"w0\":\"zz`), 1))
	f.Add(byte(7), []byte(`{"key_id":"0123abcd","not_before":"2026-05-01T08:00:00Z","not_after":"2026-04-01T08:00:00Z"}`))
	f.Add(byte(1), []byte(`{"key_id":"0123abcd","key_id":"x"}`))
	f.Add(byte(0), []byte(`{"limit":1e999}`))
	f.Add(byte(12), []byte(`{"timeout_s":-1}`))
	f.Add(byte(13), []byte(`{"public_key":"04","name":"\u00ff"}`))
	f.Fuzz(func(t *testing.T, which byte, args []byte) {
		if len(args) > 0 && !json.Valid(args) {
			return // the server hands Handle only valid JSON
		}
		v := fuzzVerbs[int(which)%len(fuzzVerbs)]
		// What the arguments decode into, as the daemon decodes them.
		target := reflect.New(reflect.TypeOf(v.args)).Interface()
		dec := json.NewDecoder(bytes.NewReader(args))
		dec.DisallowUnknownFields()
		bad := len(args) > 0 && dec.Decode(target) != nil

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := d.Handle(ctx, control.Peer{UID: 1000}, v.verb, args)
		if err == nil {
			if bad {
				t.Fatalf("%s %s: accepted", v.verb, args)
			}
			if b, err := json.Marshal(res); err != nil {
				t.Fatalf("%s %s: result does not encode: %v", v.verb, args, err)
			} else {
				for _, s := range secrets {
					if strings.Contains(string(b), s) {
						t.Fatalf("%s: result %s shows a secret", v.verb, b)
					}
				}
			}
			return
		}
		ce, ok := errors.AsType[*control.Error](err)
		if !ok {
			t.Fatalf("%s %s: internal error %v", v.verb, args, err)
		}
		if bad && (ce.Code != control.CodeBadRequest || !strings.HasPrefix(ce.Message, "arguments of "+v.verb+": ")) {
			t.Fatalf("%s %s: %v, want bad_request for the arguments", v.verb, args, err)
		}
		for _, s := range secrets {
			if strings.Contains(ce.Message, s) {
				t.Fatalf("%s %s: the error shows a secret: %v", v.verb, args, err)
			}
		}
	})
}

// fuzzDaemon builds a daemon from the shipped simulator configuration in a
// fresh directory with its vehicle key and bench PKI; it is not run.
func fuzzDaemon(f *testing.F) *Daemon {
	dir := f.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	if err := os.WriteFile(filepath.Join(dir, "vehicle.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		f.Fatal(err)
	}
	if err := pki.Init(filepath.Join(dir, "pki"), rand.Reader, &k.PublicKey, time.Now()); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("..", "configs", "simulator.toml"))
	if err != nil {
		f.Fatal(err)
	}
	cfg, err := config.Parse(b, dir)
	if err != nil {
		f.Fatal(err)
	}
	d, err := New(cfg, Options{Version: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	return d
}
