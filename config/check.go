package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"time"

	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/transaction"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// check validates the whole configuration and reports every problem.
func (c *Config) check() error {
	var errs []error
	add := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	v := c.Vehicle
	prof, err := wire.ProfileByName(v.Profile)
	if err != nil {
		add("vehicle.profile", "%v", err)
	} else if id, err := hex.DecodeString(v.Identifier); err != nil || len(id) != prof.IdentifierLen {
		add("vehicle.identifier", "want %d bytes of hex for profile %s", prof.IdentifierLen, prof.Name)
	}
	if v.PrivateKey == "" {
		add("vehicle.private_key", "required")
	} else if _, err := c.VehicleKey(); err != nil {
		add("vehicle.private_key", "%v", err)
	}
	for key, p := range map[string]string{"vehicle.certificate": v.Certificate, "vehicle.oem_root": v.OEMRoot} {
		if p == "" {
			continue
		}
		if _, err := readCertificate(c.Path(p)); err != nil {
			add(key, "%v", err)
		}
	}
	if b, err := hex.DecodeString(v.Brand); err != nil || len(b) != 2 {
		add("vehicle.brand", "want 2 bytes of hex, e.g. \"0001\"")
	}
	if c.Simulator.DevicePKI != "" && !c.Simulator.Enabled {
		add("simulator.device_pki", "only simulated phones use it: set simulator.enabled = true or remove it")
	}
	if (v.Certificate == "") != (v.OEMRoot == "") {
		add("vehicle", "owner pairing needs both certificate and oem_root (or neither)")
	}
	if n := c.Pairing.ScryptN; n < 4096 || n&(n-1) != 0 {
		add("pairing.scrypt_n", "want a power of two of at least 4096")
	}
	if err := c.Layout().Validate(); err != nil {
		add("vehicle", "%v", err)
	}
	profiles, err := policy.NewProfiles(c.Profiles)
	if err != nil {
		add("profiles", "%v", err)
	} else if _, ok := profiles.Get(v.OwnerProfile); !ok {
		add("vehicle.owner_profile", "profile %d is not defined", v.OwnerProfile)
	}

	if c.Store.Path == "" {
		add("store.path", "required")
	}
	if c.Store.AuditLimit < 10 {
		add("store.audit_limit", "at least 10")
	}
	if c.Control.Socket == "" {
		add("control.socket", "required")
	}
	if m, err := strconv.ParseUint(c.Control.Mode, 8, 32); err != nil || m > 0o777 {
		add("control.mode", "want an octal mode such as \"0660\"")
	}
	if _, err := c.SocketOwner(); err != nil {
		add("control.user", "%v", err)
	}
	if _, err := c.SocketGroup(); err != nil {
		add("control.group", "%v", err)
	}
	for key, d := range map[string]Duration{"timeouts.apdu": c.Timeouts.APDU, "timeouts.long": c.Timeouts.Long, "timeouts.transaction": c.Timeouts.Transaction, "store.lock_timeout": c.Store.LockTimeout} {
		if d < 0 {
			add(key, "must not be negative")
		}
	}
	apduTimeout := c.Timeouts.APDU.Or(transaction.DefaultTimeouts.APDU)
	for key, d := range map[string]Duration{"timeouts.auth0_max": c.Timeouts.Auth0Max, "timeouts.auth1_max": c.Timeouts.Auth1Max} {
		switch {
		case d < 0:
			add(key, "must be positive (or 0: no bound)")
		case time.Duration(d) >= apduTimeout:
			add(key, "%v is not below timeouts.apdu (%v): the exchange would time out first", time.Duration(d), apduTimeout)
		}
	}

	if len(c.Readers) == 0 {
		add("readers", "at least one reader is required")
	}
	names := map[string]int{}
	devices := map[string]int{}
	for i, r := range c.Readers {
		key := fmt.Sprintf("readers[%d]", i)
		if r.Name == "" {
			add(key+".name", "required")
		} else if j, dup := names[r.Name]; dup {
			add(key+".name", "%q is also the name of readers[%d]", r.Name, j)
		} else {
			names[r.Name] = i
		}
		if _, err := policy.ParseRole(r.Role); err != nil {
			add(key+".role", "%v", err)
		}
		device := ""
		switch r.Backend {
		case "sim":
			if r.PCSC != nil || r.PN532 != nil {
				add(key, "the sim backend takes no pcsc or pn532 section")
			}
			if !c.Simulator.Enabled {
				add(key+".backend", "sim readers need simulator.enabled = true")
			}
		case "pcsc":
			switch {
			case r.PCSC == nil || r.PCSC.Reader == "":
				add(key+".pcsc.reader", "required for the pcsc backend")
			case r.PN532 != nil:
				add(key, "a pcsc reader takes no pn532 section")
			default:
				device = "pcsc:" + r.PCSC.Reader
				if _, err := hexOrEmpty(r.PCSC.ECP); err != nil {
					add(key+".pcsc.ecp", "%v", err)
				}
			}
		case "pn532":
			switch {
			case r.PN532 == nil:
				add(key+".pn532", "required for the pn532 backend")
			case r.PCSC != nil:
				add(key, "a pn532 reader takes no pcsc section")
			default:
				p := r.PN532
				if p.Bus != "spi" && p.Bus != "i2c" && p.Bus != "uart" {
					add(key+".pn532.bus", "want spi, i2c or uart")
				}
				if p.Device == "" {
					add(key+".pn532.device", "required")
				}
				device = p.Bus + ":" + p.Device
				if _, err := hexOrEmpty(p.ECP); err != nil {
					add(key+".pn532.ecp", "%v", err)
				}
				if p.MaxRetries != nil && (*p.MaxRetries < 0 || *p.MaxRetries > 255) {
					add(key+".pn532.max_retries", "want 0 to 255")
				}
			}
		default:
			add(key+".backend", "want sim, pcsc or pn532")
		}
		if device != "" {
			if j, dup := devices[device]; dup {
				add(key, "uses the same device as readers[%d]", j)
			}
			devices[device] = i
		}
	}

	switch c.HAL.Backend {
	case "record":
	case "gpio":
		// The gpio package's errors name their keys under hal.gpio already.
		if err := c.HAL.GPIO.Validate(); err != nil {
			errs = append(errs, err)
		}
	default:
		add("hal.backend", "want record or gpio")
	}
	c.checkLines(add)
	if _, err := c.LogLevel(); err != nil {
		add("log.level", "%v", err)
	}
	return errors.Join(errs...)
}

// Layout is the mailbox layout of the configuration.
func (c *Config) Layout() wire.Layout {
	v := c.Vehicle
	return wire.Layout{SlotIDLen: v.SlotIDLen, TokenLen: v.ImmobilizerTokenLen, OEMDataLen: v.OEMDataLen, AttestationLen: v.AttestationLen}
}

// VehicleKey loads vehicle.SK (ReadVehicleKey).
func (c *Config) VehicleKey() (*ecdsa.PrivateKey, error) {
	return ReadVehicleKey(c.Path(c.Vehicle.PrivateKey))
}

// ReadVehicleKey reads a vehicle key file: a PEM file ("EC PRIVATE KEY" or
// PKCS#8 "PRIVATE KEY") with a P-256 key, readable by its owner only.
func ReadVehicleKey(path string) (*ecdsa.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %04o): chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	var key any
	switch blk.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("%s: PEM block %q is not a private key", path, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	k, ok := key.(*ecdsa.PrivateKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: not a P-256 key", path)
	}
	return k, nil
}

// Brand is the decoded brand code.
func (c *Config) Brand() []byte {
	b, _ := hex.DecodeString(c.Vehicle.Brand)
	return b
}

// VehicleIdentifier is the decoded vehicle identifier.
func (c *Config) VehicleIdentifier() []byte {
	b, _ := hex.DecodeString(c.Vehicle.Identifier)
	return b
}

// Certificate loads a configured certificate (PEM or DER); "" gives nil.
func (c *Config) Certificate(p string) (*x509.Certificate, error) {
	if p == "" {
		return nil, nil
	}
	return readCertificate(c.Path(p))
}

func readCertificate(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	return x509.ParseCertificate(b)
}

// SocketOwner is the uid to give the socket file (-1: leave it).
func (c *Config) SocketOwner() (int, error) {
	return lookupID(c.Control.User, func(s string) (string, error) {
		u, err := user.Lookup(s)
		if err != nil {
			return "", err
		}
		return u.Uid, nil
	})
}

// SocketGroup is the gid to give the socket file (-1: leave it).
func (c *Config) SocketGroup() (int, error) {
	return lookupID(c.Control.Group, func(s string) (string, error) {
		g, err := user.LookupGroup(s)
		if err != nil {
			return "", err
		}
		return g.Gid, nil
	})
}

func lookupID(s string, byName func(string) (string, error)) (int, error) {
	if s == "" {
		return -1, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		return n, nil
	}
	id, err := byName(s)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(id)
}

// SocketMode is the socket file's mode.
func (c *Config) SocketMode() os.FileMode {
	m, _ := strconv.ParseUint(c.Control.Mode, 8, 32)
	return os.FileMode(m)
}

// LogLevel is the configured log level.
func (c *Config) LogLevel() (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(c.Log.Level))
	return l, err
}

func hexOrEmpty(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not hex: %v", err)
	}
	return b, nil
}

// ECP returns a reader's ECP frame (nil when none).
func (r Reader) ECP() []byte {
	var s string
	switch {
	case r.PCSC != nil:
		s = r.PCSC.ECP
	case r.PN532 != nil:
		s = r.PN532.ECP
	}
	b, _ := hexOrEmpty(s)
	return b
}

// checkLines reports a GPIO line used twice: by two readers' IRQ or reset
// lines, or by a reader and an actuator output.
func (c *Config) checkLines(add func(key, format string, a ...any)) {
	owner := map[string]string{}
	use := func(key, line string) {
		if line == "" {
			return
		}
		if prev, dup := owner[line]; dup {
			add(key, "line %q is also %s", line, prev)
			return
		}
		owner[line] = key
	}
	if c.HAL.Backend == "gpio" {
		g := c.HAL.GPIO
		for key, o := range map[string]string{"unlock": g.Unlock.Line, "lock": g.Lock.Line, "engine": g.Engine.Line, "led": g.LED.Line, "buzzer": g.Buzzer.Line, "door": g.DoorInput.Line} {
			if o != "" {
				owner[o] = "hal.gpio." + key
			}
		}
	}
	for i, r := range c.Readers {
		if r.PN532 == nil {
			continue
		}
		use(fmt.Sprintf("readers[%d].pn532.irq", i), r.PN532.IRQ)
		use(fmt.Sprintf("readers[%d].pn532.reset", i), r.PN532.Reset)
	}
}
