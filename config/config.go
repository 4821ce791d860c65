// Package config loads and checks dkvehicled's TOML configuration: the
// vehicle's identity and key files, the store, the control socket, the
// readers with their roles and backends, the access profiles, the actuator
// lines, the timeouts and the simulator. Load checks everything before the
// daemon starts: unknown keys, missing files and duplicate readers are errors
// that name the key, and a syntax error names its line.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/dkvehicled/dkvehicled/hal/gpio"
	"github.com/dkvehicled/dkvehicled/policy"
)

// Config is the whole configuration.
type Config struct {
	Vehicle   Vehicle          `toml:"vehicle"`
	Store     Store            `toml:"store"`
	Control   Control          `toml:"control"`
	Timeouts  Timeouts         `toml:"timeouts"`
	Profiles  []policy.Profile `toml:"profiles"`
	Readers   []Reader         `toml:"readers"`
	HAL       HAL              `toml:"hal"`
	Simulator Simulator        `toml:"simulator"`
	Pairing   Pairing          `toml:"pairing"`
	Bench     Bench            `toml:"bench"`
	Log       Log              `toml:"log"`

	// Dir is the directory of the configuration file; relative paths in it
	// are resolved against it.
	Dir string `toml:"-"`
}

// Vehicle is the vehicle's identity.
type Vehicle struct {
	// Profile is the protocol profile: "ccc" (default).
	Profile string `toml:"profile"`
	// Identifier is the vehicle identifier sent in AUTH0, hex.
	Identifier string `toml:"identifier"`
	// PrivateKey is the PEM file of vehicle.SK (mode 0600).
	PrivateKey string `toml:"private_key"`
	// Certificate is the vehicle certificate (PEM or DER), optional until
	// owner pairing.
	Certificate string `toml:"certificate"`
	// OEMRoot is the vehicle OEM root certificate (PEM or DER), optional until
	// owner pairing.
	OEMRoot string `toml:"oem_root"`
	// OwnerProfile is the access profile of owners (default 0).
	OwnerProfile int `toml:"owner_profile"`
	// Brand is the 2-byte vehicle brand code sent at pairing, hex (default
	// "0001").
	Brand string `toml:"brand"`
	// Layout of the slots and mailboxes (PROTOCOL.md 2, 4); zero values take
	// the defaults 8, 16, 32 and 512.
	SlotIDLen           int `toml:"slot_id_len"`
	ImmobilizerTokenLen int `toml:"immobilizer_token_len"`
	OEMDataLen          int `toml:"oem_data_len"`
	AttestationLen      int `toml:"attestation_len"`
}

// Store is the key store.
type Store struct {
	// Path is the bbolt file.
	Path string `toml:"path"`
	// LockTimeout bounds the wait for the file lock (default 1 s).
	LockTimeout Duration `toml:"lock_timeout"`
	// AuditLimit bounds the audit log (default 10000 entries).
	AuditLimit int `toml:"audit_limit"`
}

// Control is the control socket.
type Control struct {
	Socket string `toml:"socket"`
	// Mode is the socket file's mode, octal (default "0660").
	Mode string `toml:"mode"`
	// User and Group own the socket file (names or numbers; empty: the
	// daemon's own).
	User  string `toml:"user"`
	Group string `toml:"group"`
	// AllowedUIDs and AllowedGIDs may use the socket (root always may).
	AllowedUIDs []uint32 `toml:"allowed_uids"`
	AllowedGIDs []uint32 `toml:"allowed_gids"`
}

// Timeouts of PROTOCOL.md 7 and of the reader loop.
type Timeouts struct {
	APDU        Duration `toml:"apdu"`        // default 500 ms
	Long        Duration `toml:"long"`        // default 1 s
	Transaction Duration `toml:"transaction"` // default 2 s
	// Auth0Max and Auth1Max bound the phone's answer time to AUTH0 and AUTH1,
	// a relay mitigation (docs/relay.md); zero: no bound.
	Auth0Max Duration `toml:"auth0_max"`
	Auth1Max Duration `toml:"auth1_max"`
}

// Reader is one NFC reader.
type Reader struct {
	Name    string `toml:"name"`
	Role    string `toml:"role"`    // door or dashboard
	Backend string `toml:"backend"` // sim, pcsc or pn532
	PCSC    *PCSC  `toml:"pcsc"`
	PN532   *PN532 `toml:"pn532"`
}

// PCSC configures a PC/SC reader.
type PCSC struct {
	// Reader is the PC/SC reader name or a glob pattern.
	Reader string `toml:"reader"`
	// Feedback drives an ACR122U's LED and buzzer.
	Feedback bool `toml:"feedback"`
	// ECP is the ECP frame in hex, without CRC; empty sends none.
	ECP string `toml:"ecp"`
}

// PN532 configures a PN532 board.
type PN532 struct {
	Bus          string   `toml:"bus"`    // spi, i2c or uart
	Device       string   `toml:"device"` // SPI port or I2C bus name as periph knows it, or the serial device
	IRQ          string   `toml:"irq"`    // GPIO line of the IRQ output, optional
	Reset        string   `toml:"reset"`  // GPIO line of RSTPDN, optional
	BitReverse   *bool    `toml:"bit_reverse"`
	MaxRetries   *int     `toml:"max_retries"`
	PollInterval Duration `toml:"poll_interval"`
	ECP          string   `toml:"ecp"`
}

// HAL selects and configures the actuators.
type HAL struct {
	// Backend is "record" (logs and records, for the simulator) or "gpio".
	Backend string `toml:"backend"`
	// EngineWindow is the engine-start authorization window of the record
	// backend (the gpio backend has its own).
	EngineWindow Duration    `toml:"engine_window"`
	GPIO         gpio.Config `toml:"gpio"`
}

// Simulator enables the in-process simulated phones and the sim verbs.
type Simulator struct {
	Enabled bool `toml:"enabled"`
	// PhonesFile keeps the simulated phones across restarts (default
	// sim-phones.json beside the store).
	PhonesFile string `toml:"phones_file"`
	// DevicePKI is a bench PKI directory (dkpki init): simulated phones get
	// its device OEM CA and instance CA, so they can be paired as owners.
	// Without it they have no Digital Key framework.
	DevicePKI string `toml:"device_pki"`
}

// Pairing configures owner pairing (PROTOCOL.md 6). It needs the vehicle
// certificate and the vehicle OEM root.
type Pairing struct {
	// Timeout ends pairing mode when no phone paired (default 5 min).
	Timeout Duration `toml:"timeout"`
	// ScryptN is the scrypt cost of verifiers the vehicle derives itself from
	// a bench password (default 4096).
	ScryptN int `toml:"scrypt_n"`
}

// Bench enables tools for bench rigs that a vehicle in service must not have.
type Bench struct {
	// DirectEnrolment allows `dkctl enrol owner`: enrolling a phone's public
	// key as the owner without pairing. Off by default.
	DirectEnrolment bool `toml:"direct_enrolment"`
}

// Log configures logging to stderr.
type Log struct {
	Level string `toml:"level"` // debug, info (default), warn, error
}

// Duration is a time.Duration written as a string ("500ms").
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Or returns d, or def when d is zero.
func (d Duration) Or(def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// Load reads, decodes and checks the configuration at path. Every problem
// found is reported, each naming its key.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and checks a configuration whose relative paths are
// resolved against dir.
func Parse(b []byte, dir string) (*Config, error) {
	c := &Config{HAL: HAL{GPIO: gpio.DefaultConfig()}}
	md, err := toml.Decode(string(b), c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("line %d: %s", pe.Position.Line, pe.Message)
		}
		return nil, err
	}
	if und := md.Undecoded(); len(und) > 0 {
		var names []string
		for _, k := range und {
			names = append(names, k.String())
		}
		return nil, fmt.Errorf("unknown key %s", strings.Join(names, ", "))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	c.Dir = abs
	c.defaults()
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// Path resolves a configured path against the configuration's directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

func (c *Config) defaults() {
	v := &c.Vehicle
	if v.Profile == "" {
		v.Profile = "ccc"
	}
	setInt := func(p *int, def int) {
		if *p == 0 {
			*p = def
		}
	}
	setInt(&v.SlotIDLen, 8)
	setInt(&v.ImmobilizerTokenLen, 16)
	setInt(&v.OEMDataLen, 32)
	setInt(&v.AttestationLen, 512)
	setInt(&c.Store.AuditLimit, 10000)
	setInt(&c.Pairing.ScryptN, 4096)
	if v.Brand == "" {
		v.Brand = "0001"
	}
	if c.Control.Mode == "" {
		c.Control.Mode = "0660"
	}
	if len(c.Profiles) == 0 {
		c.Profiles = policy.Defaults()
	}
	if c.HAL.Backend == "" {
		c.HAL.Backend = "record"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Simulator.Enabled && c.Simulator.PhonesFile == "" && c.Store.Path != "" {
		c.Simulator.PhonesFile = filepath.Join(filepath.Dir(c.Path(c.Store.Path)), "sim-phones.json")
	}
}
