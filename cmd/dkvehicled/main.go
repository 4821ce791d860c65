// Command dkvehicled is the vehicle's digital-key daemon: it polls the NFC
// readers, runs every tap's transaction, drives the actuators, and answers
// dkctl on its control socket. See README.md.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"

	"github.com/dkvehicled/dkvehicled/config"
	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/daemon"
	"github.com/dkvehicled/dkvehicled/keystore"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("dkvehicled", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/dkvehicled/dkvehicled.toml", "configuration file")
	check := fs.Bool("check-config", false, "check the configuration and exit")
	checkStore := fs.Bool("check-store", false, "check the configured store's consistency and exit (1 if it finds a problem)")
	initKey := fs.String("init-key", "", "write a new P-256 vehicle key to this file (mode 0600) and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case *showVersion:
		fmt.Fprintln(stderr, "dkvehicled", version)
		return 0
	case *initKey != "":
		if err := writeKey(*initKey); err != nil {
			fmt.Fprintln(stderr, "dkvehicled:", err)
			return 1
		}
		return 0
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "dkvehicled: configuration:", err)
		return 1
	}
	if *check {
		fmt.Fprintln(stderr, "dkvehicled: configuration", *cfgPath, "is valid")
		return 0
	}
	if *checkStore {
		return checkStoreFile(cfg, stderr)
	}
	level, _ := cfg.LogLevel()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := serve(cfg, log); err != nil {
		log.Error("dkvehicled stopped", "err", err)
		return 1
	}
	return 0
}

// serve runs the daemon until SIGTERM or SIGINT: it opens the store, starts
// the readers and the control socket, tells systemd it is ready, pings the
// watchdog from this loop, and on a signal finishes the tap in progress,
// leaves every output inactive, closes the store and returns.
func serve(cfg *config.Config, log *slog.Logger) error {
	d, err := daemon.New(cfg, daemon.Options{Version: version, Logger: log})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	owner, _ := cfg.SocketOwner()
	group, _ := cfg.SocketGroup()
	allowedGIDs := cfg.Control.AllowedGIDs
	if group >= 0 {
		// The socket's group may use it: that is what the group is for.
		allowedGIDs = append(allowedGIDs, uint32(group))
	}
	srv, err := control.Listen(control.ServerConfig{
		Path: cfg.Path(cfg.Control.Socket), Mode: cfg.SocketMode(), UID: owner, GID: group,
		AllowedUIDs: cfg.Control.AllowedUIDs, AllowedGIDs: allowedGIDs, Logger: log,
	}, d)
	if err != nil {
		return errors.Join(err, d.Close())
	}
	// The socket outlives the reader loops, so clients see the last tap's
	// event before it closes.
	srvCtx, stopSrv := context.WithCancel(context.Background())
	defer stopSrv()
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(srvCtx) }()
	d.Run(ctx)
	if _, err := sd.SdNotify(false, sd.SdNotifyReady); err != nil {
		log.Warn("notifying systemd", "err", err)
	}
	log.Info("dkvehicled ready", "version", version, "readers", len(cfg.Readers), "socket", cfg.Path(cfg.Control.Socket))

	var tick <-chan time.Time
	if wd, err := sd.SdWatchdogEnabled(false); err == nil && wd > 0 {
		t := time.NewTicker(wd / 2)
		defer t.Stop()
		tick = t.C
	}
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case err := <-serveDone:
			log.Error("control socket stopped", "err", err)
			stop()
		case <-tick:
			if err := d.Healthy(); err != nil {
				log.Error("health check failed; not pinging the watchdog", "err", err)
				continue
			}
			_, _ = sd.SdNotify(false, sd.SdNotifyWatchdog)
		}
	}
	_, _ = sd.SdNotify(false, sd.SdNotifyStopping)
	log.Info("stopping: finishing the tap in progress")
	d.Wait()
	stopSrv()
	err = errors.Join(srv.Close(), d.Close())
	log.Info("dkvehicled stopped")
	return err
}

// checkStoreFile opens the configured store read-only (a daemon holding it
// makes the open time out with a clear error), runs the consistency check
// and prints each problem on its own line. It returns the exit code: 0 for
// a consistent store, 1 otherwise.
func checkStoreFile(cfg *config.Config, stderr io.Writer) int {
	path := cfg.Path(cfg.Store.Path)
	s, err := keystore.Open(path, keystore.Options{ReadOnly: true, LockTimeout: cfg.Store.LockTimeout.Or(time.Second)})
	if err != nil {
		fmt.Fprintln(stderr, "dkvehicled:", err)
		return 1
	}
	defer s.Close()
	r, err := s.Check()
	if err != nil {
		fmt.Fprintln(stderr, "dkvehicled: checking", path+":", err)
		return 1
	}
	for _, p := range r.Problems {
		fmt.Fprintln(stderr, "dkvehicled: store problem:", p)
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(stderr, "dkvehicled: store %s: %d problem(s)\n", path, len(r.Problems))
		return 1
	}
	fmt.Fprintf(stderr, "dkvehicled: store ok: %d keys, %d slots (%s)\n", r.Endpoints, r.Slots, path)
	return 0
}

// writeKey creates a new vehicle key file, refusing to overwrite one.
func writeKey(path string) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
