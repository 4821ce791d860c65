package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
)

// Exit codes.
const (
	exitOK       = 0
	exitDaemon   = 1 // the daemon answered an error
	exitUsage    = 2 // the command line is wrong
	exitNoDaemon = 3 // the daemon cannot be reached or refuses this user
)

const defaultSocket = "/run/dkvehicled/control.sock"

// options are the global flags, accepted before or after the command.
type options struct {
	socket  string
	json    bool
	timeout time.Duration
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.socket, "socket", o.socket, "control socket `path` (env DKCTL_SOCKET)")
	fs.BoolVar(&o.json, "json", o.json, "print results as JSON, for programs")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "give up on the daemon after this `duration`")
}

// env is what a command runs with.
type env struct {
	ctx    context.Context
	opts   options
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// usageError is a command line that cannot run.
type usageError string

func (e usageError) Error() string { return string(e) }

// run is dkctl: it parses args, runs the command and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	opts := options{socket: cmp.Or(getenv("DKCTL_SOCKET"), defaultSocket), timeout: 10 * time.Second}
	fs := newFlagSet("dkctl")
	opts.register(fs)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return exitOK
	} else if err != nil {
		return usage(stderr, nil, err.Error())
	}
	args = fs.Args()
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	if args[0] == "help" {
		return help(stdout, stderr, args[1:])
	}
	cmd, rest := lookup(args)
	if cmd == nil {
		return usage(stderr, nil, unknownCommand(args))
	}

	cfs := newFlagSet("dkctl " + cmd.name)
	act := cmd.setup(cfs)
	opts.register(cfs)
	pos, err := parseArgs(cfs, rest)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(stdout, cmd)
		return exitOK
	}
	if err != nil {
		return usage(stderr, cmd, err.Error())
	}
	if len(pos) != len(cmd.args) {
		return usage(stderr, cmd, fmt.Sprintf("%s takes %d argument(s), got %d", cmd.name, len(cmd.args), len(pos)))
	}
	err = act(&env{ctx: ctx, opts: opts, stdin: stdin, stdout: stdout, stderr: stderr}, pos)
	return report(stderr, cmd, opts, err)
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // dkctl prints its own usage
	return fs
}

// parseArgs parses flags anywhere among the positional arguments, as in
// "keys window KEY --not-after T"; "--" ends the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// report prints err, if any, and returns the exit code for it.
func report(stderr io.Writer, cmd *command, opts options, err error) int {
	if err == nil {
		return exitOK
	}
	if ue, ok := errors.AsType[usageError](err); ok {
		return usage(stderr, cmd, string(ue))
	}
	if e, ok := errors.AsType[*control.Error](err); ok {
		fmt.Fprintf(stderr, "dkctl: %s: %s\n", e.Code, e.Message)
		if e.Code == control.CodePermissionDenied {
			return exitNoDaemon
		}
		return exitDaemon
	}
	if errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(stderr, "dkctl: no answer from dkvehicled within %v (see -timeout)\n", opts.timeout)
		return exitNoDaemon
	}
	fmt.Fprintf(stderr, "dkctl: %v\n", err)
	return exitNoDaemon
}

// usage reports a command line error.
func usage(stderr io.Writer, cmd *command, msg string) int {
	fmt.Fprintf(stderr, "dkctl: %s\n", msg)
	if cmd != nil {
		fmt.Fprintf(stderr, "usage: dkctl %s\nRun 'dkctl %s -h' for help.\n", cmd.synopsis(), cmd.name)
	} else {
		fmt.Fprintln(stderr, "Run 'dkctl help' for the commands.")
	}
	return exitUsage
}

// unknownCommand explains words that name no command, listing the
// commands of a group when the first word names one.
func unknownCommand(args []string) string {
	var group []string
	for _, c := range commands {
		if strings.HasPrefix(c.name, args[0]+" ") {
			group = append(group, c.name)
		}
	}
	if len(group) == 0 {
		return fmt.Sprintf("unknown command %q", args[0])
	}
	return fmt.Sprintf("unknown command %q; %s commands: %s", strings.Join(args, " "), args[0], strings.Join(group, ", "))
}
