package gpio

import (
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/dkvehicled/dkvehicled/hal"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.UnlockPulse != 500*ms || c.LockPulse != 500*ms || c.EngineMode != EngineModeWindow ||
		c.EngineWindow != 30*time.Second || c.EnginePulse != 500*ms {
		t.Fatalf("defaults changed: %+v", c)
	}
	for _, p := range []hal.Pattern{hal.PatternSeen, hal.PatternAllowed, hal.PatternDenied, hal.PatternError} {
		pat, ok := c.Patterns.For(p)
		if !ok || len(pat.LED) == 0 || len(pat.Buzzer) == 0 {
			t.Errorf("default pattern %q = %+v", p, pat)
		}
	}
	if _, ok := c.Patterns.For("party"); ok {
		t.Error("Patterns.For accepted an unknown pattern")
	}

	// Without lines the defaults name the two required keys.
	err := c.Validate()
	if err == nil {
		t.Fatal("defaults without lines validated")
	}
	want := "hal.gpio.unlock: line is required\nhal.gpio.lock: line is required"
	if err.Error() != want {
		t.Fatalf("Validate() = %q, want %q", err, want)
	}
	if err := testConfig().Validate(); err != nil {
		t.Fatalf("testConfig: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"unlock pulse too short", func(c *Config) { c.UnlockPulse = ms }, "hal.gpio.unlock_pulse: 1ms is outside [10ms, 10s]"},
		{"lock pulse missing", func(c *Config) { c.LockPulse = 0 }, "hal.gpio.lock_pulse: 0s is outside [10ms, 10s]"},
		{"window too long", func(c *Config) { c.EngineWindow = time.Hour }, "hal.gpio.engine_window: 1h0m0s is outside [1s, 10m0s]"},
		{"bad mode", func(c *Config) { c.EngineMode = "always" }, `hal.gpio.engine_mode: "always" is neither "window" nor "pulse"`},
		{"pulse mode without pulse", func(c *Config) { c.EngineMode = EngineModePulse; c.EnginePulse = 0 }, "hal.gpio.engine_pulse: 0s is outside"},
		{"duplicate line", func(c *Config) { c.Engine.Line = "LOCK" }, `hal.gpio.engine: line "LOCK" is also hal.gpio.lock`},
		{"blank in line", func(c *Config) { c.LED.Line = "GPIO 5" }, `hal.gpio.led: line "GPIO 5" contains blanks`},
		{"bad offset", func(c *Config) { c.Buzzer.Line = "gpiochip0/x" }, `hal.gpio.buzzer: line "gpiochip0/x": offset "x" is not a line number`},
		{"no chip", func(c *Config) { c.Buzzer.Line = "/17" }, `hal.gpio.buzzer: line "/17": chip/offset without a chip`},
		{"bad pull", func(c *Config) { c.DoorInput.Pull = "sideways" }, `hal.gpio.door.pull: "sideways" is not one of`},
		{"zero step", func(c *Config) { c.Patterns.Denied.LED = []time.Duration{100 * ms, 0} }, "hal.gpio.patterns.denied.led: step 1: 0s is outside (0, 10s]"},
		{"too many steps", func(c *Config) { c.Patterns.Seen.Buzzer = make([]time.Duration, 33) }, "hal.gpio.patterns.seen.buzzer: 33 steps, at most 32"},
		{"too long", func(c *Config) {
			c.Patterns.Error.LED = []time.Duration{10 * time.Second, 10 * time.Second, 10 * time.Second, time.Second}
		}, "hal.gpio.patterns.error.led: lasts 31s, at most 30s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			tc.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want it to contain %q", err, tc.want)
			}
		})
	}

	c := testConfig()
	c.Unlock.Line = "gpiochip0/17"
	c.Lock.Line = "/dev/gpiochip0/18"
	c.EngineMode = EngineModePulse
	c.Patterns.Seen = Pattern{}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

// TestTOML checks that the daemon's TOML maps onto Config.
func TestTOML(t *testing.T) {
	const doc = `
unlock = { line = "GPIO17", active_low = true }
lock = { line = "GPIO27", active_low = true }
engine = { line = "gpiochip0/22" }
led = { line = "GPIO23" }
buzzer = { line = "GPIO24" }
door = { line = "GPIO25", active_low = true, pull = "up" }
unlock_pulse = "400ms"
engine_mode = "pulse"
engine_pulse = "300ms"

[patterns.denied]
led = ["150ms", "100ms", "150ms"]
buzzer = []
`
	c := DefaultConfig()
	md, err := toml.Decode(doc, &c)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("keys not mapped: %v", u)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Unlock != (Output{"GPIO17", true}) || c.Engine != (Output{"gpiochip0/22", false}) ||
		c.DoorInput != (Input{"GPIO25", true, PullUp}) {
		t.Fatalf("lines: %+v", c)
	}
	if c.UnlockPulse != 400*ms || c.LockPulse != 500*ms || c.EngineMode != EngineModePulse || c.EnginePulse != 300*ms {
		t.Fatalf("durations: %+v", c)
	}
	if d := c.Patterns.Denied; len(d.LED) != 3 || d.LED[1] != 100*ms || len(d.Buzzer) != 0 {
		t.Fatalf("denied pattern: %+v", d)
	}
	if len(c.Patterns.Allowed.LED) == 0 {
		t.Fatal("decoding one pattern erased the default of another")
	}
}
