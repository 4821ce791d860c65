package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/internal/pki"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// FuzzParse feeds arbitrary TOML to Parse in a directory holding a vehicle
// key and a bench PKI, as the shipped configurations expect. Parse never
// panics; what it accepts has every property check promises (so the daemon
// can use it without checking again) and parses the same a second time; and
// no error ever shows the vehicle's private key, whichever file the
// configuration points at.
func FuzzParse(f *testing.F) {
	d := f.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	if err := os.WriteFile(filepath.Join(d, "vehicle.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		f.Fatal(err)
	}
	if err := pki.Init(filepath.Join(d, "pki"), rand.Reader, &k.PublicKey, time.Now()); err != nil {
		f.Fatal(err)
	}
	scalar, _ := k.Bytes()
	secrets := []string{
		base64.StdEncoding.EncodeToString(der)[:24],
		base64.StdEncoding.EncodeToString(der[len(der)-40:])[:24],
		hex.EncodeToString(scalar)[:24],
		string(scalar[:12]),
	}

	files, _ := filepath.Glob(filepath.Join("..", "configs", "*.toml"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), `"`+systemdDir, `"`)
		s = strings.ReplaceAll(s, `group = "dkvehicled"`, "")
		f.Add(s)
		f.Add(strings.Replace(s, "[vehicle]", "[vehicle]\ncertificate = \"vehicle.key\"", 1))
	}
	f.Add("[vehicle]\nidentifier = \"5645\"\nprivate_key = \"vehicle.key\"\n[[readers]]\nname = \"x\"\nrole = \"door\"\nbackend = \"pn532\"\n[readers.pn532]\nbus = \"uart\"\ndevice = \"/dev/serial0\"\necp = \"6a02\"\nmax_retries = 300\n")
	f.Add("[store]\npath = \"s.db\"\nlock_timeout = \"-1s\"\n[timeouts]\napdu = \"soon\"\n")
	f.Add("x = \n")

	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse([]byte(s), d)
		if err != nil {
			if c != nil {
				t.Fatal("a configuration and an error")
			}
			for _, sec := range secrets {
				if strings.Contains(err.Error(), sec) {
					t.Fatalf("error shows the vehicle key: %v", err)
				}
			}
			return
		}
		checkParsed(t, c, d)
		c2, err := Parse([]byte(s), d)
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("parses differently the second time: %v", err)
		}
	})
}

// checkParsed checks what Parse promises of a configuration it accepts.
func checkParsed(t *testing.T, c *Config, dir string) {
	t.Helper()
	fail := func(format string, a ...any) {
		t.Helper()
		t.Fatalf("accepted configuration: "+format, a...)
	}
	if abs, _ := filepath.Abs(dir); c.Dir != abs {
		fail("Dir %q", c.Dir)
	}
	prof, err := wire.ProfileByName(c.Vehicle.Profile)
	if err != nil || len(c.VehicleIdentifier()) != prof.IdentifierLen {
		fail("profile %q with identifier %q", c.Vehicle.Profile, c.Vehicle.Identifier)
	}
	if _, err := c.VehicleKey(); err != nil {
		fail("vehicle key: %v", err)
	}
	for _, p := range []string{c.Vehicle.Certificate, c.Vehicle.OEMRoot} {
		if cert, err := c.Certificate(p); err != nil || (p != "") != (cert != nil) {
			fail("certificate %q: %v", p, err)
		}
	}
	if (c.Vehicle.Certificate == "") != (c.Vehicle.OEMRoot == "") {
		fail("certificate without root or the other way round")
	}
	if len(c.Brand()) != 2 {
		fail("brand %q", c.Vehicle.Brand)
	}
	if err := c.Layout().Validate(); err != nil {
		fail("layout: %v", err)
	}
	ps, err := policy.NewProfiles(c.Profiles)
	if err != nil {
		fail("profiles: %v", err)
	}
	if _, ok := ps.Get(c.Vehicle.OwnerProfile); !ok {
		fail("owner profile %d undefined", c.Vehicle.OwnerProfile)
	}
	if n := c.Pairing.ScryptN; n < 4096 || n&(n-1) != 0 {
		fail("scrypt_n %d", n)
	}
	if c.Store.Path == "" || c.Store.AuditLimit < 10 || c.Control.Socket == "" {
		fail("store %+v, socket %q", c.Store, c.Control.Socket)
	}
	if m, err := strconv.ParseUint(c.Control.Mode, 8, 32); err != nil || m > 0o777 || c.SocketMode() != os.FileMode(m) {
		fail("socket mode %q", c.Control.Mode)
	}
	for _, dd := range []Duration{c.Timeouts.APDU, c.Timeouts.Long, c.Timeouts.Transaction, c.Store.LockTimeout} {
		if dd < 0 {
			fail("negative duration %v", time.Duration(dd))
		}
	}
	if _, err := c.LogLevel(); err != nil {
		fail("log level %q", c.Log.Level)
	}
	if len(c.Readers) == 0 {
		fail("no readers")
	}
	names := map[string]bool{}
	for i, r := range c.Readers {
		if r.Name == "" || names[r.Name] {
			fail("reader %d name %q", i, r.Name)
		}
		names[r.Name] = true
		if _, err := policy.ParseRole(r.Role); err != nil {
			fail("reader %d role %q", i, r.Role)
		}
		switch r.Backend {
		case "sim":
			if r.PCSC != nil || r.PN532 != nil || !c.Simulator.Enabled {
				fail("sim reader %d", i)
			}
		case "pcsc":
			if r.PCSC == nil || r.PCSC.Reader == "" || r.PN532 != nil {
				fail("pcsc reader %d", i)
			}
		case "pn532":
			p := r.PN532
			if p == nil || r.PCSC != nil || p.Device == "" || (p.Bus != "spi" && p.Bus != "i2c" && p.Bus != "uart") ||
				(p.MaxRetries != nil && (*p.MaxRetries < 0 || *p.MaxRetries > 255)) {
				fail("pn532 reader %d", i)
			}
		default:
			fail("reader %d backend %q", i, r.Backend)
		}
		for _, e := range []*string{pcscECP(r), pn532ECP(r)} {
			if e != nil {
				if _, err := hex.DecodeString(*e); err != nil {
					fail("reader %d ECP %q", i, *e)
				}
			}
		}
	}
	switch c.HAL.Backend {
	case "record":
	case "gpio":
		if err := c.HAL.GPIO.Validate(); err != nil {
			fail("gpio: %v", err)
		}
	default:
		fail("hal backend %q", c.HAL.Backend)
	}
}

func pcscECP(r Reader) *string {
	if r.PCSC == nil {
		return nil
	}
	return &r.PCSC.ECP
}

func pn532ECP(r Reader) *string {
	if r.PN532 == nil {
		return nil
	}
	return &r.PN532.ECP
}

// FuzzKeyFiles feeds arbitrary bytes as the vehicle key file and as a
// certificate file. A key is accepted only as a P-256 private key in a
// PEM block, a certificate only as a certificate (PEM or DER), and no
// error shows the file's contents.
func FuzzKeyFiles(f *testing.F) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k)
	sec1, _ := x509.MarshalECPrivateKey(k)
	k384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384, _ := x509.MarshalPKCS8PrivateKey(k384)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pkcs8}))
	f.Add(pkcs8)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n"))
	d := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(d, "file")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		c := &Config{Dir: d, Vehicle: Vehicle{PrivateKey: "file"}}
		key, err := c.VehicleKey()
		if err == nil && (key == nil || key.Curve != elliptic.P256()) {
			t.Fatalf("accepted a key that is not P-256: %v", key)
		}
		_, cerr := c.Certificate("file")
		// What a key file holds: the DER of its PEM block, or the file.
		der := b
		if blk, _ := pem.Decode(b); blk != nil {
			der = blk.Bytes
		}
		if len(der) < 8 {
			return
		}
		shown := []string{hex.EncodeToString(der[:8]), hex.EncodeToString(der[len(der)-8:])}
		for _, e := range []error{err, cerr} {
			if e == nil {
				continue
			}
			for _, s := range shown {
				if strings.Contains(e.Error(), s) && !strings.Contains(path, s) {
					t.Fatalf("error shows the file: %v", e)
				}
			}
		}
	})
}
