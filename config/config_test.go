package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/internal/pki"
)

// dir returns a directory holding a vehicle key and a bench PKI for it
// (pki/, as the simulator configuration expects).
func dir(t *testing.T) string {
	d := t.TempDir()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	if err := os.WriteFile(filepath.Join(d, "vehicle.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := pki.Init(filepath.Join(d, "pki"), rand.Reader, &k.PublicKey, time.Now()); err != nil {
		t.Fatal(err)
	}
	return d
}

func simulatorConfig(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("..", "configs", "simulator.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestShippedSimulatorConfig(t *testing.T) {
	d := dir(t)
	c, err := Parse([]byte(simulatorConfig(t)), d)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Readers) != 2 || !c.Simulator.Enabled || c.Path(c.Store.Path) != filepath.Join(d, "store.db") {
		t.Fatalf("%+v", c)
	}
	if c.Simulator.PhonesFile != filepath.Join(d, "sim-phones.json") || c.Timeouts.APDU.Or(0).Milliseconds() != 500 {
		t.Fatalf("defaults: %q %v", c.Simulator.PhonesFile, c.Timeouts.APDU)
	}
	if _, err := c.VehicleKey(); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	base := simulatorConfig(t)
	pathLine := 1 + strings.Count(base[:strings.Index(base, `path = "store.db"`)], "\n")
	cases := []struct {
		name, edit, want string
	}{
		{"unknown key", base + "\n[store2]\nx = 1\n", "unknown key store2"},
		{"unknown nested key", strings.Replace(base, "audit_limit = 10000", "audit_limit = 10000\nauditlimit = 5", 1), "store.auditlimit"},
		{"syntax error line", strings.Replace(base, `path = "store.db"`, `path = "store.db`, 1), fmt.Sprintf("line %d", pathLine)},
		{"duplicate reader", strings.Replace(base, `name = "dashboard"`, `name = "door"`, 1), `readers[1].name: "door" is also the name of readers[0]`},
		{"bad role", strings.Replace(base, `role = "dashboard"`, `role = "trunk"`, 1), "readers[1].role"},
		{"missing key file", strings.Replace(base, `private_key = "vehicle.key"`, `private_key = "missing.key"`, 1), "vehicle.private_key"},
		{"bad identifier", strings.Replace(base, `identifier = "56454849434c4531"`, `identifier = "5645"`, 1), "vehicle.identifier"},
		{"owner profile undefined", strings.Replace(base, "owner_profile = 0", "owner_profile = 9", 1), "vehicle.owner_profile"},
		{"sim reader without simulator", strings.Replace(base, "enabled = true", "enabled = false", 1), "readers[0].backend: sim readers need simulator.enabled = true"},
		{"pcsc without reader", strings.Replace(base, `backend = "sim"`, `backend = "pcsc"`, 1), "readers[0].pcsc.reader"},
		{"bad mode", strings.Replace(base, `mode = "0660"`, `mode = "rw"`, 1), "control.mode"},
		{"bad duration", strings.Replace(base, `apdu = "500ms"`, `apdu = "soon"`, 1), "soon"},
		{"bad hal", strings.Replace(base, `backend = "record"`, `backend = "relay"`, 1), "hal.backend"},
		{"bad log level", strings.Replace(base, `level = "info"`, `level = "loud"`, 1), "log.level"},
		{"bad brand", strings.Replace(base, `brand = "0001"`, `brand = "01"`, 1), "vehicle.brand"},
		{"certificate without root", strings.Replace(base, `oem_root = "pki/vehicle-oem-root.crt"`, "", 1), "vehicle: owner pairing needs both certificate and oem_root"},
		{"certificate not a certificate", strings.Replace(base, `certificate = "pki/vehicle.crt"`, `certificate = "pki/instance-ca.key"`, 1), "vehicle.certificate"},
		{"scrypt too cheap", strings.Replace(base, "scrypt_n = 4096", "scrypt_n = 1024", 1), "pairing.scrypt_n"},
		{"scrypt not a power of two", strings.Replace(base, "scrypt_n = 4096", "scrypt_n = 5000", 1), "pairing.scrypt_n"},
		{"device pki without simulator", strings.Replace(strings.ReplaceAll(base, `backend = "sim"`, `backend = "pcsc"`+"\n[readers.pcsc]\nreader = \"x\""), "enabled = true", "enabled = false", 1), "simulator.device_pki"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.edit), dir(t))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestEveryProblemReported(t *testing.T) {
	edit := strings.Replace(simulatorConfig(t), `role = "dashboard"`, `role = "trunk"`, 1)
	edit = strings.Replace(edit, `mode = "0660"`, `mode = "x"`, 1)
	_, err := Parse([]byte(edit), dir(t))
	if err == nil || !strings.Contains(err.Error(), "readers[1].role") || !strings.Contains(err.Error(), "control.mode") {
		t.Fatalf("want both problems: %v", err)
	}
}

func TestKeyFileReadableByOthersRefused(t *testing.T) {
	d := dir(t)
	if err := os.Chmod(filepath.Join(d, "vehicle.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Parse([]byte(simulatorConfig(t)), d)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key accepted: %v", err)
	}
}

func TestReaderBackends(t *testing.T) {
	base := strings.Replace(simulatorConfig(t), `[[readers]]
name = "door"
role = "door"
backend = "sim"`, `[[readers]]
name = "door"
role = "door"
backend = "pn532"
[readers.pn532]
bus = "spi"
device = "SPI0.0"
ecp = "6a02c3020200000000"`, 1)
	c, err := Parse([]byte(base), dir(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.Readers[0].PN532.Bus != "spi" || len(c.Readers[0].ECP()) != 9 {
		t.Fatalf("%+v", c.Readers[0])
	}
	bad := strings.Replace(base, `bus = "spi"`, `bus = "usb"`, 1)
	if _, err := Parse([]byte(bad), dir(t)); err == nil || !strings.Contains(err.Error(), "readers[0].pn532.bus") {
		t.Fatalf("bad bus: %v", err)
	}
}

func TestGPIOLineUsedTwice(t *testing.T) {
	edit := strings.Replace(simulatorConfig(t), `[[readers]]
name = "door"
role = "door"
backend = "sim"`, `[[readers]]
name = "door"
role = "door"
backend = "pn532"
[readers.pn532]
bus = "uart"
device = "/dev/serial0"
irq = "GPIO17"`, 1)
	edit = strings.Replace(edit, `[hal]
backend = "record"`, `[hal]
backend = "gpio"
[hal.gpio]
unlock = { line = "GPIO17" }
lock = { line = "GPIO27" }`, 1)
	_, err := Parse([]byte(edit), dir(t))
	if err == nil || !strings.Contains(err.Error(), `readers[0].pn532.irq: line "GPIO17" is also hal.gpio.unlock`) {
		t.Fatalf("shared line accepted: %v", err)
	}
}
