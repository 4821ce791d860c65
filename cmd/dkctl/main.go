// Command dkctl is the command-line client of dkvehicled's control socket:
// it shows the daemon's state, keys, slots, profiles and audit log, follows
// its events, manages keys and readers, and drives the simulator.
//
// Run "dkctl help" for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
