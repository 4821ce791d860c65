package config

import (
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// systemdDir is where the Raspberry Pi configurations keep the vehicle key;
// the test puts a key in a temporary directory and points them there.
const systemdDir = "/etc/dkvehicled/"

// TestShippedConfigs parses every configuration in configs/ as the daemon
// would (-check-config): each must be valid, with its vehicle key in place.
func TestShippedConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "configs", "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var rpi []string
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "rpi-pn532-") {
			rpi = append(rpi, filepath.Base(f))
		}
	}
	if want := []string{"rpi-pn532-i2c.toml", "rpi-pn532-spi.toml", "rpi-pn532-uart.toml"}; !slices.Equal(rpi, want) {
		t.Fatalf("Raspberry Pi configurations %v, want %v", rpi, want)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, err := parseShipped(t, string(b))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.VehicleKey(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// parseShipped parses a shipped configuration with its key paths moved to a
// temporary directory holding a fresh key. The group of the systemd install,
// dkvehicled, exists only where systemd-sysusers made it: elsewhere it is
// replaced by the test's own group, after checking it is there.
func parseShipped(t *testing.T, s string) (*Config, error) {
	t.Helper()
	d := dir(t)
	s = strings.ReplaceAll(s, `"`+systemdDir, `"`+d+string(filepath.Separator))
	if strings.Contains(s, `group = "dkvehicled"`) {
		if _, err := user.LookupGroup("dkvehicled"); err != nil {
			s = strings.Replace(s, `group = "dkvehicled"`, `group = "`+strconv.Itoa(os.Getgid())+`"`, 1)
		}
	}
	return Parse([]byte(s), d)
}

// TestRaspberryPiConfigs checks what the bench-rig configurations promise:
// the systemd paths, the door reader on the PN532 bus the file is named
// after, the gpio backend, and no GPIO line used twice (between readers, and
// between readers and actuators, which the configuration check alone does
// not see).
func TestRaspberryPiConfigs(t *testing.T) {
	cases := []struct {
		file, bus, device string
		readers           int
	}{
		{"rpi-pn532-spi.toml", "spi", "SPI0.0", 2},
		{"rpi-pn532-i2c.toml", "i2c", "/dev/i2c-1", 2},
		{"rpi-pn532-uart.toml", "uart", "/dev/serial0", 1},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "configs", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			s := string(b)
			for _, want := range []string{
				`private_key = "/etc/dkvehicled/vehicle.key"`,
				`path = "/var/lib/dkvehicled/store.db"`,
				`socket = "/run/dkvehicled/control.sock"`,
				`group = "dkvehicled"`,
			} {
				if !strings.Contains(s, want) {
					t.Errorf("no %s", want)
				}
			}
			c, err := parseShipped(t, s)
			if err != nil {
				t.Fatal(err)
			}
			if c.HAL.Backend != "gpio" || c.Simulator.Enabled || c.Control.Mode != "0660" {
				t.Errorf("hal %q, simulator %v, socket mode %s", c.HAL.Backend, c.Simulator.Enabled, c.Control.Mode)
			}
			if len(c.Readers) != tc.readers {
				t.Fatalf("%d readers, want %d", len(c.Readers), tc.readers)
			}
			door := c.Readers[0]
			if door.Name != "door" || door.Role != "door" || door.Backend != "pn532" || door.PN532.Bus != tc.bus || door.PN532.Device != tc.device {
				t.Errorf("door reader %+v %+v", door, door.PN532)
			}
			if len(c.Readers) > 1 {
				if r := c.Readers[1]; r.Name != "dashboard" || r.Role != "dashboard" || r.Backend != "pn532" {
					t.Errorf("dashboard reader %+v", r)
				}
			}
			lines := map[string]string{}
			use := func(key, line string) {
				if line == "" {
					return
				}
				if other, dup := lines[line]; dup {
					t.Errorf("%s and %s both use %s", other, key, line)
				}
				lines[line] = key
			}
			for _, r := range c.Readers {
				p := r.PN532
				if p.Bus == "spi" && (p.BitReverse == nil || !*p.BitReverse) {
					t.Errorf("reader %s: a Raspberry Pi's SPI needs bit_reverse = true", r.Name)
				}
				if p.Bus == "uart" && p.IRQ != "" {
					t.Errorf("reader %s: HSU has no IRQ line", r.Name)
				}
				if p.PollInterval.Or(0) <= 0 || p.PollInterval.Or(0) > 150*time.Millisecond {
					t.Errorf("reader %s: poll interval %v; phones keep express mode at 100-150 ms", r.Name, p.PollInterval.Or(0))
				}
				use(r.Name+".irq", p.IRQ)
				use(r.Name+".reset", p.Reset)
			}
			g := c.HAL.GPIO
			for key, line := range map[string]string{
				"hal.gpio.unlock": g.Unlock.Line, "hal.gpio.lock": g.Lock.Line, "hal.gpio.engine": g.Engine.Line,
				"hal.gpio.led": g.LED.Line, "hal.gpio.buzzer": g.Buzzer.Line, "hal.gpio.door": g.DoorInput.Line,
			} {
				if line == "" {
					t.Errorf("%s not wired", key)
				}
				use(key, line)
			}
			// The lines hal/gpio/README.md suggests.
			if g.Unlock.Line != "GPIO17" || g.Lock.Line != "GPIO27" || g.Engine.Line != "GPIO22" || g.LED.Line != "GPIO23" || g.Buzzer.Line != "GPIO24" || g.DoorInput.Line != "GPIO25" {
				t.Errorf("hal.gpio lines %+v", g)
			}
			if g.EngineMode != "window" || g.EngineWindow != 30*time.Second || g.Patterns.Allowed.LED[0] != time.Second {
				t.Errorf("hal.gpio timings %+v", g)
			}
		})
	}
}
