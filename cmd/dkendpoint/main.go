// Command dkendpoint is a simulated phone for bench rigs and CI: it keeps a
// phone's whole state (keys, mailboxes, Kpersistent) in a file and plugs into
// a vsmartcard virtual PC/SC reader (vpcd) as a contactless card, so a real
// dkvehicled built with PC/SC sees a phone tap its reader.
//
// Owner pairing: the phone gets a device PKI (the instance CA of a bench PKI
// made by dkpki init) and the one-time pairing password, then taps the
// dashboard reader while the vehicle is in pairing mode.
//
//	dkendpoint new      -state owner.json -pki pki
//	dkendpoint password -state owner.json 12345678
//	dkendpoint tap      -state owner.json -reader 1    # pairs; the password is used up
//
// Direct enrolment (bench), without pairing:
//
//	dkendpoint new   -state owner.json
//	dkendpoint key   -state owner.json -vehicle 56454849434c4531   # prints the public key
//	dkctl --json enrol owner --public-key HEX > enrolment.json      # on the vehicle (bench)
//	dkendpoint enrol -state owner.json -enrolment enrolment.json
//	dkendpoint tap   -state owner.json -reader 0                     # tap the door reader once
//	dkendpoint share -from owner.json -to friend.json -profile 2 -name Alice
//
// Replay (an attacker who recorded a real tap plays it back; the vehicle
// refuses it):
//
//	dkendpoint tap    -state owner.json -reader 0 -record door-tap.json
//	dkendpoint replay -transcript door-tap.json -reader 0
package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/internal/pki"
	"github.com/dkvehicled/dkvehicled/internal/vpcd"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: dkendpoint COMMAND [flags]

A simulated phone whose state lives in a file (mode 0600: it holds private keys).

Commands:
  new    -state FILE [-pki DIR]            create a phone with no keys; -pki gives it the
                                           instance CA of a bench PKI (dkpki init), to pair
  password -state FILE PASSWORD|-clear     the owner types the pairing password (the phone
                                           is ready for pairing until it pairs), or clears it
  key    -state FILE -vehicle HEX          make a key for a vehicle; prints its public key
  enrol  -state FILE -enrolment FILE       install that key as the owner's, from the
                                           output of 'dkctl --json enrol owner'
  share  -from FILE -to FILE -profile ID -name NAME [-not-before T] [-not-after T]
                                           the owner's phone shares a key with the friend's
  show   -state FILE                       the phone's keys and device PKI (no secrets)
  tap    -state FILE [-reader N | -addr HOST:PORT] [-stay] [-drop-after N] [-json]
                 [-record FILE]            lay the phone on a vpcd reader: once (leaves after
                                           CONTROL FLOW), or -stay until Ctrl-C; -record writes
                                           the tap's commands and answers (JSON, hex)
  replay -transcript FILE [-reader N | -addr HOST:PORT] [-json]
                                           an attacker's card that plays a recorded tap back:
                                           answers command i with recorded answer i, whatever
                                           the command (6F 00 past the end); leaves after
                                           CONTROL FLOW
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("dkendpoint "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var err error
	switch cmd {
	case "new":
		state := fs.String("state", "", "phone state `file` to create")
		pkiDir := fs.String("pki", "", "bench PKI `directory` (dkpki init) whose instance CA the phone gets")
		if fs.Parse(args) != nil || *state == "" || fs.NArg() > 0 {
			return usageError(stderr, fs)
		}
		err = newPhone(*state, *pkiDir)
	case "password":
		state := fs.String("state", "", "phone state `file`")
		clearPW := fs.Bool("clear", false, "clear the pairing password")
		if fs.Parse(args) != nil || *state == "" || (*clearPW && fs.NArg() != 0) || (!*clearPW && (fs.NArg() != 1 || fs.Arg(0) == "")) {
			return usageError(stderr, fs)
		}
		err = setPassword(*state, fs.Arg(0), stdout)
	case "key":
		state := fs.String("state", "", "phone state `file`")
		vehicle := fs.String("vehicle", "", "vehicle identifier in `hex` (dkctl vehicle show)")
		if fs.Parse(args) != nil || *state == "" || *vehicle == "" {
			return usageError(stderr, fs)
		}
		err = makeKey(*state, *vehicle, stdout)
	case "enrol":
		state := fs.String("state", "", "phone state `file`")
		enrolment := fs.String("enrolment", "", "`file` written by 'dkctl --json enrol owner'")
		if fs.Parse(args) != nil || *state == "" || *enrolment == "" {
			return usageError(stderr, fs)
		}
		err = installEnrolment(*state, *enrolment, stdout)
	case "share":
		from := fs.String("from", "", "the owner's phone state `file`")
		to := fs.String("to", "", "the friend's phone state `file` (created if missing)")
		profile := fs.Int("profile", -1, "access profile `id` of the friend's key")
		name := fs.String("name", "", "friendly `name` of the friend's key")
		nb := fs.String("not-before", "", "start of validity, RFC 3339 (default now)")
		na := fs.String("not-after", "", "end of validity, RFC 3339 (default 30 days on)")
		if fs.Parse(args) != nil || *from == "" || *to == "" || *profile < 0 {
			return usageError(stderr, fs)
		}
		err = share(*from, *to, *profile, *name, *nb, *na, stdout)
	case "show":
		state := fs.String("state", "", "phone state `file`")
		if fs.Parse(args) != nil || *state == "" {
			return usageError(stderr, fs)
		}
		err = show(*state, stdout)
	case "tap":
		o := tapOptions{}
		fs.StringVar(&o.state, "state", "", "phone state `file`")
		readerN := fs.Int("reader", 0, "vpcd reader `number`: 0 is \"Virtual PCD 00 00\" (port 35963), 1 is \"... 00 01\"")
		fs.StringVar(&o.addr, "addr", "", "vpcd `host:port` (overrides -reader)")
		fs.BoolVar(&o.stay, "stay", false, "stay on the reader for many transactions, until Ctrl-C")
		fs.IntVar(&o.dropAfter, "drop-after", 0, "pulled away: leave after answering `N` commands, mid-transaction")
		fs.BoolVar(&o.json, "json", false, "print the tap's timing as JSON")
		fs.StringVar(&o.record, "record", "", "write the tap's commands and answers to `file` (JSON, hex), for replay")
		if fs.Parse(args) != nil || o.state == "" || (o.record != "" && o.stay) {
			return usageError(stderr, fs)
		}
		if o.addr == "" {
			o.addr = vpcd.Addr(*readerN)
		}
		err = tap(o, stdout)
	case "replay":
		file := fs.String("transcript", "", "transcript `file` written by 'tap -record'")
		readerN := fs.Int("reader", 0, "vpcd reader `number`: 0 is \"Virtual PCD 00 00\" (port 35963), 1 is \"... 00 01\"")
		addr := fs.String("addr", "", "vpcd `host:port` (overrides -reader)")
		asJSON := fs.Bool("json", false, "print what the card saw as JSON")
		if fs.Parse(args) != nil || *file == "" || fs.NArg() > 0 {
			return usageError(stderr, fs)
		}
		if *addr == "" {
			*addr = vpcd.Addr(*readerN)
		}
		err = replay(*file, *addr, *asJSON, stdout)
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "dkendpoint:", err)
		return 1
	}
	return 0
}

func usageError(w io.Writer, fs *flag.FlagSet) int {
	fmt.Fprintf(w, "usage of %s:\n", fs.Name())
	fs.PrintDefaults()
	return 2
}

func load(path string) (*endpoint.Phone, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return endpoint.Load(b, rand.Reader)
}

// save writes the phone's state atomically, readable by its owner only.
func save(path string, p *endpoint.Phone) error {
	b, err := p.Save()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".dkendpoint-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func newPhone(state, pkiDir string) error {
	if _, err := os.Stat(state); err == nil {
		return fmt.Errorf("%s exists", state)
	}
	p := endpoint.New(wire.CCC, wire.CCC.Versions, wire.DefaultLayout, rand.Reader)
	if pkiDir != "" {
		b, err := pki.LoadBench(pkiDir)
		if err != nil {
			return err
		}
		p.SetDevicePKI(b.DevicePKI(rand.Reader))
	}
	return save(state, p)
}

// setPassword sets the pairing password ("" clears it).
func setPassword(state, password string, w io.Writer) error {
	p, err := load(state)
	if err != nil {
		return err
	}
	if password != "" && p.DevicePKI() == nil {
		return fmt.Errorf("%s has no device PKI and cannot pair: make the phone with 'dkendpoint new -pki DIR'", state)
	}
	p.SetPairingPassword(password)
	if err := save(state, p); err != nil {
		return err
	}
	if password == "" {
		fmt.Fprintln(w, "pairing password cleared")
	} else {
		fmt.Fprintln(w, "pairing password set: the phone pairs at its next tap on the dashboard reader in pairing mode")
	}
	return nil
}

func makeKey(state, vehicle string, w io.Writer) error {
	vid, err := hex.DecodeString(vehicle)
	if err != nil || len(vid) != wire.CCC.IdentifierLen {
		return fmt.Errorf("-vehicle: want %d bytes of hex", wire.CCC.IdentifierLen)
	}
	p, err := load(state)
	if err != nil {
		return err
	}
	inv, err := p.Invite(vid)
	if err != nil {
		return err
	}
	if err := save(state, p); err != nil {
		return err
	}
	fmt.Fprintln(w, hex.EncodeToString(inv.PublicKey))
	return nil
}

func installEnrolment(state, file string, w io.Writer) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var en control.Enrolment
	if err := json.Unmarshal(b, &en); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	vid, err1 := hex.DecodeString(en.VehicleIdentifier)
	vpk, err2 := hex.DecodeString(en.VehiclePublicKey)
	slot, err3 := hex.DecodeString(en.Slot)
	if err := errors.Join(err1, err2, err3); err != nil || len(slot) == 0 {
		return fmt.Errorf("%s is not an enrolment: %v", file, err)
	}
	p, err := load(state)
	if err != nil {
		return err
	}
	k, err := p.AcceptEnrolment(vid, vpk, nil, slot)
	if err != nil {
		return err
	}
	if got := k.KeyID().String(); en.KeyID != "" && got != en.KeyID {
		return fmt.Errorf("the enrolment is for key %s, this phone's key is %s", en.KeyID, got)
	}
	if err := save(state, p); err != nil {
		return err
	}
	fmt.Fprintf(w, "owner key %s installed for vehicle %s; tap the dashboard reader first\n", k.KeyID(), en.VehicleIdentifier)
	return nil
}

func share(from, to string, profile int, name, nb, na string, w io.Writer) error {
	owner, err := load(from)
	if err != nil {
		return err
	}
	friend, err := load(to)
	if errors.Is(err, os.ErrNotExist) {
		friend, err = endpoint.New(wire.CCC, wire.CCC.Versions, wire.DefaultLayout, rand.Reader), nil
	}
	if err != nil {
		return err
	}
	var vid []byte
	for _, k := range owner.Keys() {
		if k.Role == endpoint.RoleOwner {
			vid = k.VehicleIdentifier
		}
	}
	if vid == nil {
		return errors.New(from + " holds no owner key")
	}
	now := time.Now().UTC().Truncate(time.Second)
	terms := endpoint.ShareTerms{Profile: profile, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(30 * 24 * time.Hour), FriendlyName: name}
	if nb != "" {
		if terms.NotBefore, err = time.Parse(time.RFC3339, nb); err != nil {
			return fmt.Errorf("-not-before: %w", err)
		}
	}
	if na != "" {
		if terms.NotAfter, err = time.Parse(time.RFC3339, na); err != nil {
			return fmt.Errorf("-not-after: %w", err)
		}
	}
	inv, err := friend.Invite(vid)
	if err != nil {
		return err
	}
	sh, err := owner.Share(inv, terms)
	if err != nil {
		return err
	}
	if err := friend.Accept(sh); err != nil {
		return err
	}
	if err := errors.Join(save(from, owner), save(to, friend)); err != nil {
		return err
	}
	fmt.Fprintf(w, "shared: friend key %x, slot %x (owner entry %d)\n", friend.Key(vid).KeyID(), sh.SlotIdentifier, sh.MovedEntry)
	return nil
}

func show(state string, w io.Writer) error {
	p, err := load(state)
	if err != nil {
		return err
	}
	for _, k := range p.Keys() {
		fmt.Fprintf(w, "%s key %s for vehicle %x (Kpersistent: %v)\n", k.Role, k.KeyID(), k.VehicleIdentifier, len(k.Kpersistent) > 0)
	}
	if d := p.DevicePKI(); d != nil {
		if c, err := x509.ParseCertificate(d.InstanceCACert); err == nil {
			fmt.Fprintf(w, "device PKI: instance CA %s, issued by %s\n", c.Subject, c.Issuer)
		}
	}
	return nil
}

type tapOptions struct {
	state, addr string
	stay, json  bool
	dropAfter   int
	record      string // transcript file to write, or ""
}

// tapReport is what a tap prints: when the reader noticed the phone and how
// long the transaction took, as the phone saw them.
type tapReport struct {
	Addr          string  `json:"addr"`
	Commands      int     `json:"commands"`
	DetectedMS    float64 `json:"detected_ms"`    // connect to the first APDU
	TransactionMS float64 `json:"transaction_ms"` // first APDU to the CONTROL FLOW answered
	ControlFlow   string  `json:"control_flow,omitempty"`
	Dropped       bool    `json:"dropped,omitempty"`
}

var errLeave = errors.New("leaving the reader")

func tap(o tapOptions, w io.Writer) error {
	p, err := load(o.state)
	if err != nil {
		return err
	}
	var rec transcript
	err = present(presence{
		addr: o.addr, stay: o.stay, json: o.json, dropAfter: o.dropAfter,
		answer: func(ctx context.Context, c []byte) []byte {
			r, err := p.Transceive(ctx, c)
			if err != nil {
				r = []byte{0x6F, 0x00}
			}
			if o.record != "" {
				rec.add(c, r)
			}
			return r
		},
		reset: p.Reset,
		ended: func() {
			if err := save(o.state, p); err != nil {
				fmt.Fprintln(os.Stderr, "dkendpoint: saving:", err)
			}
		},
	}, w)
	if o.record != "" {
		err = errors.Join(err, rec.write(o.record))
	}
	return errors.Join(err, save(o.state, p))
}

// presence is a card laid on a vpcd reader: how it answers each command and
// what it does when the reader resets it or, with stay, when a transaction
// ends.
type presence struct {
	addr       string
	stay, json bool
	dropAfter  int
	answer     func(ctx context.Context, c []byte) []byte
	reset      func() // power off or reset; nil: nothing
	ended      func() // after each reported transaction with stay; nil: nothing
}

// present lays the card on the reader until it leaves after CONTROL FLOW
// (or, with stay, until Ctrl-C) and reports what it saw.
func present(pr presence, w io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	connected := time.Now()
	card, err := vpcd.Dial(ctx, pr.addr)
	if err != nil {
		return err
	}
	card.OnControl = func(c vpcd.Control) {
		if (c == vpcd.PowerOff || c == vpcd.Reset) && pr.reset != nil {
			pr.reset()
		}
	}
	rep := tapReport{Addr: pr.addr}
	var first time.Time
	serveCtx, leave := context.WithCancelCause(ctx)
	defer leave(nil)
	serveErr := card.Serve(serveCtx, func(c []byte) []byte {
		if first.IsZero() {
			first = time.Now()
			rep.DetectedMS = ms(first.Sub(connected))
		}
		if pr.dropAfter > 0 && rep.Commands >= pr.dropAfter {
			// Pulled away: gone before this command arrives.
			rep.Dropped = true
			leave(errLeave)
			card.Close()
			return nil
		}
		rep.Commands++
		r := pr.answer(serveCtx, c)
		if len(c) == 4 && c[0] == wire.CLAProp && c[1] == wire.INSControl {
			rep.ControlFlow = hex.EncodeToString(c)
			rep.TransactionMS = ms(time.Since(first))
			if pr.stay {
				report(w, pr.json, rep)
				if pr.ended != nil {
					pr.ended()
				}
				rep, first = tapReport{Addr: pr.addr}, time.Time{}
			} else {
				leave(errLeave)
			}
		}
		return r
	})
	card.Close()
	if !pr.stay {
		report(w, pr.json, rep)
	}
	if serveErr != nil && !errors.Is(context.Cause(serveCtx), errLeave) && ctx.Err() == nil {
		return serveErr
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func report(w io.Writer, asJSON bool, r tapReport) {
	if asJSON {
		b, _ := json.Marshal(r)
		fmt.Fprintln(w, string(b))
		return
	}
	switch {
	case r.Dropped:
		fmt.Fprintf(w, "pulled away after %d commands\n", r.Commands)
	case r.ControlFlow == "":
		fmt.Fprintf(w, "left after %d commands, no CONTROL FLOW\n", r.Commands)
	default:
		fmt.Fprintf(w, "CONTROL FLOW %s after %d commands: seen %.1f ms after the tap, transaction %.2f ms\n",
			r.ControlFlow, r.Commands, r.DetectedMS, r.TransactionMS)
	}
}
