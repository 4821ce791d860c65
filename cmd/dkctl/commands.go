package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
)

// command is one dkctl command.
type command struct {
	name    string   // the words after dkctl, e.g. "keys revoke"
	args    []string // its positional arguments, e.g. KEY
	flags   string   // its flags in the synopsis
	summary string   // one line for the command list
	help    string   // more for the command's own help
	// setup defines the command's flags on fs and returns what runs it.
	setup func(fs *flag.FlagSet) action
}

// action runs a command with its positional arguments.
type action func(e *env, args []string) error

func (c *command) synopsis() string {
	words := append([]string{c.name}, c.args...)
	if c.flags != "" {
		words = append(words, c.flags)
	}
	return strings.Join(words, " ")
}

// lookup finds the command named by the first words of args and returns
// it with the words after its name.
func lookup(args []string) (*command, []string) {
	var best *command
	for i := range commands {
		c := &commands[i]
		words := strings.Fields(c.name)
		if len(words) <= len(args) && strings.Join(args[:len(words)], " ") == c.name &&
			(best == nil || len(words) > len(strings.Fields(best.name))) {
			best = c
		}
	}
	if best == nil {
		return nil, nil
	}
	return best, args[len(strings.Fields(best.name)):]
}

// noFlags is the setup of a command without flags of its own.
func noFlags(a action) func(*flag.FlagSet) action {
	return func(*flag.FlagSet) action { return a }
}

// simple is a command sending a fixed verb with arguments built from the
// positional ones, printing the result with show.
func simple[T any](verb string, args func(pos []string) (any, error), show func(io.Writer, T)) func(*flag.FlagSet) action {
	return noFlags(func(e *env, pos []string) error {
		a, err := args(pos)
		if err != nil {
			return err
		}
		return call(e, verb, a, show)
	})
}

func none([]string) (any, error) { return nil, nil }

func keyArg(pos []string) (any, error) { return control.KeyArgs{KeyID: pos[0]}, nil }

// call sends one request and prints its result: as indented JSON with
// -json, otherwise with show.
func call[T any](e *env, verb string, args any, show func(io.Writer, T)) error {
	ctx, cancel := context.WithTimeout(e.ctx, e.opts.timeout)
	defer cancel()
	c, err := control.Dial(e.opts.socket)
	if err != nil {
		return err
	}
	defer c.Close()
	var raw json.RawMessage
	if err := c.Call(ctx, verb, args, &raw); err != nil {
		return err
	}
	if e.opts.json {
		return printJSON(e.stdout, raw)
	}
	var v T
	if len(raw) == 0 {
		raw = json.RawMessage("null") // no result: show the zero value
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("decoding the answer to %s: %w", verb, err)
	}
	show(e.stdout, v)
	return nil
}

// onOff parses "on" or "off".
func onOff(s string) (bool, error) {
	switch s {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, usageError(fmt.Sprintf("want on or off, not %q", s))
}

// number parses a decimal integer argument.
func number(what, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, usageError(fmt.Sprintf("%s must be a number, not %q", what, s))
	}
	return n, nil
}

// checkTimes checks the RFC 3339 times of the --not-before and --not-after
// flags (empty is allowed).
func checkTimes(notBefore, notAfter string) error {
	for _, f := range []struct{ flag, v string }{{"not-before", notBefore}, {"not-after", notAfter}} {
		if f.v == "" {
			continue
		}
		if _, err := time.Parse(time.RFC3339, f.v); err != nil {
			return usageError(fmt.Sprintf("--%s %q is not an RFC 3339 time such as 2026-05-01T18:00:00Z", f.flag, f.v))
		}
	}
	return nil
}

// required checks that the named flags were given.
func required(fs *flag.FlagSet, names ...string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, n := range names {
		if !set[n] {
			return usageError("missing --" + n)
		}
	}
	return nil
}

// events follows the event stream until Ctrl-C.
func events(e *env, _ []string) error {
	c, err := control.Dial(e.opts.socket)
	if err != nil {
		return err
	}
	defer c.Close()
	if !e.opts.json {
		fmt.Fprintln(e.stdout, eventStreamHeader())
	}
	enc := json.NewEncoder(e.stdout)
	err = c.Events(e.ctx, func(ev control.Event, dropped uint64) error {
		if dropped > 0 {
			fmt.Fprintf(e.stderr, "dkctl: %d event(s) lost: dkctl read too slowly\n", dropped)
		}
		if e.opts.json {
			return enc.Encode(ev)
		}
		_, err := fmt.Fprintln(e.stdout, eventStreamLine(ev))
		return err
	})
	if e.ctx.Err() != nil && errors.Is(err, e.ctx.Err()) {
		return nil // Ctrl-C
	}
	return err
}

// storeCheck asks the daemon to check its store and prints the result; a
// problem found makes the command fail (exit status 1) after printing it.
func storeCheck(e *env, _ []string) error {
	ctx, cancel := context.WithTimeout(e.ctx, e.opts.timeout)
	defer cancel()
	c, err := control.Dial(e.opts.socket)
	if err != nil {
		return err
	}
	defer c.Close()
	var raw json.RawMessage
	if err := c.Call(ctx, control.VerbStoreCheck, nil, &raw); err != nil {
		return err
	}
	if len(raw) == 0 {
		raw = json.RawMessage("null") // no result: nothing to report
	}
	var r control.StoreCheck
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("decoding the answer to %s: %w", control.VerbStoreCheck, err)
	}
	if e.opts.json {
		err = printJSON(e.stdout, raw)
	} else {
		showStoreCheck(e.stdout, r)
	}
	if err == nil && len(r.Problems) > 0 {
		// The daemon answered, and its answer is bad news: exit status 1.
		err = control.Errorf(codeInconsistent, fmt.Sprintf("%d problem(s) in %s", len(r.Problems), r.Path))
	}
	return err
}

// codeInconsistent reports a store check that found problems.
const codeInconsistent = "store_inconsistent"

// commands are dkctl's commands, in the order of its help.
var commands = []command{
	{name: "status", summary: "the daemon's state at a glance: switch, readers, store, actuators",
		setup: simple(control.VerbStatus, none, showStatus)},
	{name: "vehicle show", summary: "the vehicle's public identity",
		setup: simple(control.VerbVehicle, none, showVehicle)},
	{name: "vehicle digital-key", args: []string{"on|off"}, flags: "[--reason REASON]",
		summary: "turn the vehicle-wide digital-key switch on or off",
		help:    "While it is off, every tap is refused. The reason (e.g. valet) shows in status and events.",
		setup: func(fs *flag.FlagSet) action {
			reason := fs.String("reason", "", "why, shown in status and events (e.g. valet)")
			return func(e *env, pos []string) error {
				on, err := onOff(pos[0])
				if err != nil {
					return err
				}
				return call(e, control.VerbDigitalKey, control.SwitchArgs{Enabled: on, Reason: *reason}, showStatus)
			}
		}},
	{name: "reader enable", args: []string{"READER"}, summary: "enable a reader",
		setup: simple(control.VerbReaderEnable, func(pos []string) (any, error) {
			return control.ReaderEnableArgs{Reader: pos[0], Enabled: true}, nil
		}, showStatus)},
	{name: "reader disable", args: []string{"READER"}, summary: "disable a reader: its taps are ignored",
		setup: simple(control.VerbReaderEnable, func(pos []string) (any, error) {
			return control.ReaderEnableArgs{Reader: pos[0], Enabled: false}, nil
		}, showStatus)},

	{name: "keys list", summary: "the stored keys",
		setup: simple(control.VerbKeysList, none, showKeys)},
	{name: "keys show", args: []string{"KEY"}, summary: "one key in full",
		setup: simple(control.VerbKeysShow, keyArg, showKey)},
	{name: "keys revoke", args: []string{"KEY"}, summary: "revoke a key for good",
		setup: simple(control.VerbKeysRevoke, keyArg, showKey)},
	{name: "keys suspend", args: []string{"KEY"}, summary: "suspend a key until it is resumed",
		setup: simple(control.VerbKeysSuspend, keyArg, showKey)},
	{name: "keys resume", args: []string{"KEY"}, summary: "resume a suspended key",
		setup: simple(control.VerbKeysResume, keyArg, showKey)},
	{name: "keys rename", args: []string{"KEY", "NAME"}, summary: "set a key's friendly name (at most 32 bytes)",
		setup: simple(control.VerbKeysRename, func(pos []string) (any, error) {
			return control.RenameArgs{KeyID: pos[0], Name: pos[1]}, nil
		}, showKey)},
	{name: "keys profile", args: []string{"KEY", "PROFILE_ID"}, summary: "change a friend key's access profile",
		help: "'dkctl profiles list' shows the profiles. An owner key's profile cannot change.",
		setup: simple(control.VerbKeysProfile, func(pos []string) (any, error) {
			id, err := number("PROFILE_ID", pos[1])
			return control.ProfileArgs{KeyID: pos[0], Profile: id}, err
		}, showKey)},
	{name: "keys window", args: []string{"KEY"}, flags: "--not-before TIME --not-after TIME",
		summary: "change a friend key's validity window",
		help:    "Both flags are required; an empty TIME (--not-after '') leaves that side open.",
		setup: func(fs *flag.FlagSet) action {
			nb := fs.String("not-before", "", "start of validity (RFC 3339; empty: open)")
			na := fs.String("not-after", "", "end of validity (RFC 3339; empty: open)")
			return func(e *env, pos []string) error {
				if err := required(fs, "not-before", "not-after"); err != nil {
					return err
				}
				if err := checkTimes(*nb, *na); err != nil {
					return err
				}
				return call(e, control.VerbKeysWindow, control.WindowArgs{KeyID: pos[0], NotBefore: *nb, NotAfter: *na}, showKey)
			}
		}},

	{name: "slots list", summary: "the slot table (without tokens)",
		setup: simple(control.VerbSlotsList, none, showSlots)},
	{name: "slots revoke", args: []string{"SLOT"}, summary: "revoke an issued slot not yet bound to a key",
		setup: simple(control.VerbSlotsRevoke, func(pos []string) (any, error) {
			return control.SlotArgs{Slot: pos[0]}, nil
		}, showSlot)},
	{name: "profiles list", summary: "the configured access profiles",
		setup: simple(control.VerbProfiles, none, showProfiles)},
	{name: "audit", flags: "[-n N]", summary: "the newest entries of the audit log",
		setup: func(fs *flag.FlagSet) action {
			n := fs.Int("n", 0, "how many entries (0: the daemon's default, 50)")
			return func(e *env, _ []string) error {
				if *n < 0 {
					return usageError("-n must not be negative")
				}
				return call(e, control.VerbAudit, control.AuditArgs{Limit: *n}, showAudit)
			}
		}},
	{name: "events", summary: "follow the live events, one line each, until Ctrl-C",
		setup: noFlags(events)},
	{name: "metrics", summary: "the Prometheus metrics, as text",
		setup: simple(control.VerbMetrics, none, showMetrics)},
	{name: "store check", summary: "check the store's consistency; exit status 1 if it finds a problem",
		help: "The daemon checks its store in one read transaction: slot bindings, keys and their slots,\n" +
			"the owner record, store orders, the audit log. Each problem is one line. With the daemon\n" +
			"stopped, 'dkvehicled -check-store' runs the same check on the file.",
		setup: noFlags(storeCheck)},

	{name: "pairing status", summary: "owner pairing: mode, verifier, attempts left",
		setup: simple(control.VerbPairingStatus, none, showPairing)},
	{name: "pairing verifier", flags: "--file FILE | --password-stdin",
		summary: "give the vehicle a new pairing verifier (7 attempts)",
		help: "FILE is the verifier the OEM's server made for this vehicle (dkpki verifier writes\n" +
			"one). On a bench, --password-stdin reads the owner's 8-digit pairing password from\n" +
			"standard input instead and the vehicle derives the verifier itself. A new verifier\n" +
			"replaces the old one and resets the attempts. Neither is ever shown again.",
		setup: func(fs *flag.FlagSet) action {
			file := fs.String("file", "", "verifier `file` (JSON: w0, L, salt, n, r, p)")
			stdin := fs.Bool("password-stdin", false, "read the 8-digit pairing password from standard input")
			return func(e *env, _ []string) error {
				var a control.VerifierArgs
				switch {
				case (*file == "") == !*stdin:
					return usageError("give --file FILE or --password-stdin")
				case *file != "":
					b, err := os.ReadFile(*file)
					if err != nil {
						return err
					}
					a.File = string(b)
				default:
					line, err := bufio.NewReader(e.stdin).ReadString('\n')
					if err != nil && !errors.Is(err, io.EOF) {
						return err
					}
					a.Password = strings.TrimSpace(line)
				}
				return call(e, control.VerbPairingVerifier, a, showPairing)
			}
		}},
	{name: "pairing start", flags: "[--for DURATION]",
		summary: "start pairing mode: the owner's phone pairs at the dashboard reader",
		help: "Pairing mode ends when a phone pairs, when it times out (default: the configuration's\n" +
			"pairing.timeout, 5 minutes) or with 'dkctl pairing cancel'. A phone that is not ready\n" +
			"for pairing gets an ordinary transaction at the dashboard meanwhile.",
		setup: func(fs *flag.FlagSet) action {
			timeout := fs.Duration("for", 0, "how long pairing mode lasts (at most 1h; 0: the configured default)")
			return func(e *env, _ []string) error {
				if *timeout < 0 || *timeout > time.Hour || (*timeout > 0 && *timeout < time.Second) {
					return usageError("--for is between 1s and 1h")
				}
				return call(e, control.VerbPairingStart, control.PairingStartArgs{TimeoutS: int(timeout.Seconds())}, showPairing)
			}
		}},
	{name: "pairing cancel", summary: "end pairing mode",
		setup: simple(control.VerbPairingCancel, none, showPairing)},

	{name: "sim phones", summary: "the simulated phones",
		setup: simple(control.VerbSimPhones, none, showPhones)},
	{name: "sim phone new", args: []string{"NAME"}, summary: "create a simulated phone",
		setup: simple(control.VerbSimNewPhone, func(pos []string) (any, error) {
			return control.SimPhoneArgs{Phone: pos[0]}, nil
		}, showPhone)},
	{name: "enrol owner", flags: "--public-key HEX [--name NAME]",
		summary: "bench: enrol a phone's public key as the owner, without pairing",
		help: "Needs bench.direct_enrolment = true in the daemon's configuration. Prints what the phone\n" +
			"needs (vehicle identifier and key, the owner's slot); with --json, the file that\n" +
			"'dkendpoint enrol' reads. Nothing secret is printed: the owner's immobilizer token\n" +
			"reaches the phone at its first dashboard tap.",
		setup: func(fs *flag.FlagSet) action {
			pk := fs.String("public-key", "", "the phone's public key for this vehicle, 65 bytes in `hex` (dkendpoint key prints it)")
			name := fs.String("name", "", "friendly `name` of the owner key")
			return func(e *env, pos []string) error {
				if err := required(fs, "public-key"); err != nil {
					return err
				}
				return call(e, control.VerbEnrolOwner, control.EnrolArgs{PublicKey: *pk, Name: *name}, showEnrolment)
			}
		}},
	{name: "sim pairing-password", args: []string{"PHONE", "PASSWORD"}, summary: "type the pairing password on a simulated phone",
		help: "The phone is then ready for pairing: in pairing mode, tap it on the dashboard reader.\n" +
			"An empty PASSWORD ('') makes it not ready again.",
		setup: simple(control.VerbSimPassword, func(pos []string) (any, error) {
			return control.SimPasswordArgs{Phone: pos[0], Password: pos[1]}, nil
		}, showPhone)},
	{name: "sim enrol-owner", args: []string{"PHONE"}, summary: "enrol a simulated phone as the owner, directly",
		setup: simple(control.VerbSimEnrolOwner, func(pos []string) (any, error) {
			return control.SimPhoneArgs{Phone: pos[0]}, nil
		}, showKey)},
	{name: "sim place", args: []string{"PHONE", "READER"}, summary: "put a simulated phone on a reader and leave it there",
		setup: simple(control.VerbSimPlace, func(pos []string) (any, error) {
			return control.SimPlaceArgs{Phone: pos[0], Reader: pos[1]}, nil
		}, showSimReader)},
	{name: "sim remove", args: []string{"READER"}, summary: "take the phone off a reader",
		setup: simple(control.VerbSimRemove, func(pos []string) (any, error) {
			return control.SimReaderArgs{Reader: pos[0]}, nil
		}, showSimReader)},
	{name: "sim tap", args: []string{"PHONE", "READER"}, flags: "[--drop-at N]",
		summary: "tap a simulated phone on a reader and show the outcome",
		help: "A refused tap is still a successful command (exit status 0): read the result.\n" +
			"--drop-at N pulls the phone away as its command N (counted from 0) arrives.",
		setup: func(fs *flag.FlagSet) action {
			dropAt := fs.Int("drop-at", -1, "pull the phone away at command `N` (from 0; -1: never)")
			return func(e *env, pos []string) error {
				a := control.SimPlaceArgs{Phone: pos[0], Reader: pos[1]}
				if *dropAt >= 0 {
					a.DropAt = dropAt
				}
				return call(e, control.VerbSimTap, a, showTap)
			}
		}},
	{name: "sim share", args: []string{"FROM", "TO"}, flags: "--profile ID --name NAME [--not-before TIME] [--not-after TIME]",
		summary: "share a key offline from a simulated owner phone to another",
		help:    "The window defaults to now until 30 days on.",
		setup: func(fs *flag.FlagSet) action {
			profile := fs.Int("profile", 0, "access profile `id` of the friend key (see 'dkctl profiles list')")
			name := fs.String("name", "", "friendly `name` of the friend key")
			nb := fs.String("not-before", "", "start of validity (RFC 3339; default now)")
			na := fs.String("not-after", "", "end of validity (RFC 3339; default 30 days on)")
			return func(e *env, pos []string) error {
				if err := required(fs, "profile", "name"); err != nil {
					return err
				}
				if err := checkTimes(*nb, *na); err != nil {
					return err
				}
				return call(e, control.VerbSimShare, control.SimShareArgs{
					From: pos[0], To: pos[1], Profile: *profile, Name: *name, NotBefore: *nb, NotAfter: *na,
				}, showShare)
			}
		}},
}
