// Package daemon is dkvehicled at run time: it opens the store, builds the
// transaction engine, the actuators and one loop per reader, publishes every
// tap and key-management action as an event (to subscribers, the audit log,
// the metrics and the log), and answers the control socket's verbs.
package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/dkvehicled/dkvehicled/config"
	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/hal"
	"github.com/dkvehicled/dkvehicled/hal/gpio"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/pairing"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/reader/pcsc"
	"github.com/dkvehicled/dkvehicled/transaction"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// Options are what the daemon takes besides its configuration.
type Options struct {
	Version string
	Logger  *slog.Logger
	// Now and Rand default to the system clock and crypto/rand.
	Now  func() time.Time
	Rand io.Reader
}

// Daemon is a running dkvehicled.
type Daemon struct {
	cfg      *config.Config
	log      *slog.Logger
	now      func() time.Time
	rand     io.Reader
	version  string
	started  time.Time
	vehicle  transaction.Vehicle
	vehPK    []byte
	store    *keystore.Store
	engine   *transaction.Engine
	timeouts transaction.Timeouts
	pairer   *pairing.Pairer // nil: pairing is not configured
	act      hal.Actuator
	readers  []*readerLoop
	bus      *bus
	metrics  *metrics
	sim      *simulator
	certHash string
	rootHash string

	mu        sync.Mutex
	settings  keystore.Settings
	pairUntil time.Time // pairing mode's end; zero: not in pairing mode

	pcscMu sync.Mutex
	pcsc   *pcsc.Manager

	wg sync.WaitGroup
}

// New builds the daemon from a checked configuration: it opens the store,
// checks that it belongs to this vehicle, and opens the actuators and the
// readers. Nothing acts yet; Run starts the reader loops.
func New(cfg *config.Config, o Options) (*Daemon, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	d := &Daemon{cfg: cfg, log: o.Logger, now: o.Now, rand: o.Rand, version: o.Version, started: time.Now(), metrics: newMetrics()}
	if err := d.open(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// open does the work of New.
func (d *Daemon) open() (err error) {
	cfg := d.cfg
	prof, _ := wire.ProfileByName(cfg.Vehicle.Profile)
	key, err := cfg.VehicleKey()
	if err != nil {
		return fmt.Errorf("vehicle key: %w", err)
	}
	profiles, err := policy.NewProfiles(cfg.Profiles)
	if err != nil {
		return err
	}
	d.vehicle = transaction.Vehicle{Profile: prof, Identifier: cfg.VehicleIdentifier(), Key: key, Layout: cfg.Layout(), Profiles: profiles}
	d.vehPK = keys.EncodePoint(&key.PublicKey)
	if d.certHash, err = certHash(cfg, cfg.Vehicle.Certificate); err != nil {
		return err
	}
	if d.rootHash, err = certHash(cfg, cfg.Vehicle.OEMRoot); err != nil {
		return err
	}
	d.store, err = keystore.Open(cfg.Path(cfg.Store.Path), keystore.Options{LockTimeout: cfg.Store.LockTimeout.Or(time.Second), AuditLimit: cfg.Store.AuditLimit})
	if err != nil {
		return err
	}
	if err := d.checkIdentity(); err != nil {
		return err
	}
	if err := d.store.View(func(tx *keystore.Tx) (err error) { d.settings, err = tx.Settings(); return err }); err != nil {
		return err
	}
	d.timeouts = transaction.Timeouts{
		APDU:        cfg.Timeouts.APDU.Or(transaction.DefaultTimeouts.APDU),
		Long:        cfg.Timeouts.Long.Or(transaction.DefaultTimeouts.Long),
		Transaction: cfg.Timeouts.Transaction.Or(transaction.DefaultTimeouts.Transaction),
	}
	d.engine, err = transaction.New(transaction.Config{
		Vehicle: d.vehicle, Store: d.store, Rand: d.rand, Now: d.now, Logger: d.log, Timeouts: d.timeouts,
		Bounds: transaction.ResponseBounds{AUTH0: time.Duration(cfg.Timeouts.Auth0Max), AUTH1: time.Duration(cfg.Timeouts.Auth1Max)},
	})
	if err != nil {
		return err
	}
	if err := d.newPairer(); err != nil {
		return err
	}
	d.bus = newBus(d.store, d.now)
	if d.act, err = d.openActuator(); err != nil {
		return err
	}
	if cfg.Simulator.Enabled {
		if d.sim, err = newSimulator(d); err != nil {
			return err
		}
	}
	for _, rc := range cfg.Readers {
		r, err := d.openReader(rc)
		if err != nil {
			return fmt.Errorf("reader %s: %w", rc.Name, err)
		}
		role, _ := policy.ParseRole(rc.Role)
		d.readers = append(d.readers, &readerLoop{name: rc.Name, role: role, backend: rc.Backend, r: r})
	}
	return nil
}

func certHash(cfg *config.Config, path string) (string, error) {
	c, err := cfg.Certificate(path)
	if err != nil || c == nil {
		return "", err
	}
	h := sha256.Sum256(c.Raw)
	return hex.EncodeToString(h[:]), nil
}

// checkIdentity records the vehicle's identity in a new store and refuses a
// store made for another vehicle: its keys would all fail, and worse, they
// would belong to someone else's car.
func (d *Daemon) checkIdentity() error {
	want := keystore.Identity{Profile: d.vehicle.Profile.Name, VehicleIdentifier: d.vehicle.Identifier, VehiclePK: d.vehPK}
	return d.store.Update(func(tx *keystore.Tx) error {
		got, err := tx.Identity()
		if err != nil {
			return err
		}
		if got == nil {
			return tx.PutIdentity(&want)
		}
		if got.Profile != want.Profile || !bytes.Equal(got.VehicleIdentifier, want.VehicleIdentifier) || !bytes.Equal(got.VehiclePK, want.VehiclePK) {
			return fmt.Errorf("store %s belongs to vehicle %x (profile %s), not to the configured vehicle %x (profile %s) with this key",
				d.store.Path(), got.VehicleIdentifier, got.Profile, want.VehicleIdentifier, want.Profile)
		}
		return nil
	})
}

func (d *Daemon) openActuator() (hal.Actuator, error) {
	switch d.cfg.HAL.Backend {
	case "gpio":
		return gpio.Open(d.cfg.HAL.GPIO, gpio.WithLogger(d.log))
	default:
		return hal.NewRecorder(hal.RecordConfig{EngineWindow: time.Duration(d.cfg.HAL.EngineWindow), Now: d.now, Logger: d.log})
	}
}

// Run starts one loop per reader and returns at once; Wait waits for them.
// The loops stop when ctx ends, after finishing a tap in progress.
func (d *Daemon) Run(ctx context.Context) {
	if err := d.engine.Prepare(); err != nil {
		d.log.Warn("preparing the first ephemeral key", "err", err)
	}
	for _, rl := range d.readers {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.runReader(ctx, rl)
		}()
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.watchReaders(ctx)
	}()
}

// healthPoll is how often the readers' health is checked for events.
const healthPoll = time.Second

// watchReaders publishes a reader event whenever a reader's health changes
// (and once at start for a reader that is not healthy), and ends pairing mode
// when its time is up.
func (d *Daemon) watchReaders(ctx context.Context) {
	known := map[string]bool{}
	for _, rl := range d.readers {
		known[rl.name] = true
	}
	t := time.NewTicker(healthPoll)
	defer t.Stop()
	for {
		d.pairingMode()
		for _, rl := range d.readers {
			h := rl.r.Health()
			if h.OK == known[rl.name] {
				continue
			}
			known[rl.name] = h.OK
			result, level := "up", slog.LevelInfo
			if !h.OK {
				result, level = "down", slog.LevelWarn
			}
			d.log.Log(ctx, level, "reader health", "reader", rl.name, "ok", h.OK, "detail", h.Detail)
			d.emit(control.Event{Type: "reader", Reader: rl.name, Role: string(rl.role), Result: result, Detail: h.Detail})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Wait returns when every reader loop has stopped.
func (d *Daemon) Wait() { d.wg.Wait() }

// Healthy is the watchdog's check: the store answers.
func (d *Daemon) Healthy() error {
	return d.store.View(func(*keystore.Tx) error { return nil })
}

// Close leaves every output inactive and closes the readers and the store.
// Call it after the loops stopped.
func (d *Daemon) Close() error {
	var errs []error
	if d.bus != nil {
		d.bus.close()
	}
	for _, rl := range d.readers {
		errs = append(errs, rl.r.Close())
	}
	if d.pcsc != nil {
		errs = append(errs, d.pcsc.Close())
	}
	if d.act != nil {
		errs = append(errs, d.act.Close())
	}
	if d.sim != nil {
		errs = append(errs, d.sim.save())
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	return errors.Join(errs...)
}

// digitalKeyEnabled reports the vehicle-wide switch and this reader's.
func (d *Daemon) enabled(reader string) (bool, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.settings.DigitalKeyDisabled {
		r := d.settings.DisabledReason
		if r == "" {
			r = "switched off"
		}
		return false, "digital key disabled vehicle-wide: " + r
	}
	for _, n := range d.settings.DisabledReaders {
		if n == reader {
			return false, "reader " + reader + " disabled"
		}
	}
	return true, ""
}
