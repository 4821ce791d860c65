package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// printUsage prints dkctl's help: the commands and the global flags.
func printUsage(w io.Writer) {
	fmt.Fprint(w, `usage: dkctl [-socket PATH] [-json] [-timeout DURATION] COMMAND [ARGUMENTS]

dkctl talks to dkvehicled over its control socket.

Commands:
`)
	const width = 34 // longer synopses get a line of their own
	for _, c := range commands {
		if syn := c.synopsis(); len(syn) > width {
			fmt.Fprintf(w, "  %s\n  %*s  %s\n", syn, width, "", c.summary)
		} else {
			fmt.Fprintf(w, "  %-*s  %s\n", width, syn, c.summary)
		}
	}
	fmt.Fprintf(w, `
Global flags, before or after the command:
  -socket PATH        control socket (default $DKCTL_SOCKET, else %s)
  -json               print results as JSON, for programs (events: one object a line)
  -timeout DURATION   give up on the daemon after this long (default 10s; events run until Ctrl-C)

A KEY is a key id or a unique prefix of at least 8 hex digits: the 12-digit
short ids dkctl prints will do. TIME is RFC 3339, e.g. 2026-05-01T18:00:00+02:00.

Exit status: 0 done; 1 the daemon refused the request (dkctl: CODE: message);
2 usage error; 3 dkvehicled cannot be reached or does not allow this user.
Run 'dkctl help COMMAND' or 'dkctl COMMAND -h' for a command's help.
`, defaultSocket)
}

// help is the "help" command: dkctl's usage, or a command's.
func help(stdout, stderr io.Writer, args []string) int {
	if len(args) == 0 {
		printUsage(stdout)
		return exitOK
	}
	cmd, rest := lookup(args)
	if cmd == nil || len(rest) > 0 {
		return usage(stderr, nil, unknownCommand(args))
	}
	printCommandHelp(stdout, cmd)
	return exitOK
}

// printCommandHelp prints a command's synopsis, description and flags.
func printCommandHelp(w io.Writer, cmd *command) {
	fmt.Fprintf(w, "usage: dkctl %s\n\n%s.\n", cmd.synopsis(), upperFirst(cmd.summary))
	if cmd.help != "" {
		fmt.Fprintf(w, "\n%s\n", cmd.help)
	}
	fs := newFlagSet(cmd.name)
	cmd.setup(fs)
	if hasFlags(fs) {
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fmt.Fprintln(w, "\nGlobal flags: -socket PATH, -json, -timeout DURATION (see 'dkctl help').")
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
