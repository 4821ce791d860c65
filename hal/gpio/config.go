package gpio

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dkvehicled/dkvehicled/hal"
)

// keyPrefix is the section of the daemon's configuration that Config maps
// onto; errors name keys as "hal.<key>".
const keyPrefix = "hal.gpio."

// Output is one output line.
type Output struct {
	// Line names the line: a name as the GPIO registry knows it ("GPIO17")
	// or chip/offset ("gpiochip0/17"). Empty means not wired.
	Line string `toml:"line"`
	// ActiveLow inverts the line: active is low, inactive is high (common on
	// relay boards).
	ActiveLow bool `toml:"active_low"`
}

// Pull is the bias of an input line.
type Pull string

// Input biases.
const (
	PullAsIs Pull = ""     // leave the bias as the kernel has it
	PullOff  Pull = "off"  // no bias
	PullUp   Pull = "up"   // internal pull-up
	PullDown Pull = "down" // internal pull-down
)

// Input is one input line.
type Input struct {
	// Line names the line, as in Output. Empty means not wired.
	Line string `toml:"line"`
	// ActiveLow means a low level is the active state (for the door input:
	// low means open, as with a switch to ground).
	ActiveLow bool `toml:"active_low"`
	// Pull is the bias; empty leaves it as is. An external resistor is
	// better than the SoC's weak internal one.
	Pull Pull `toml:"pull"`
}

// EngineMode is how the engine-start authorization is signalled.
type EngineMode string

// Engine-start authorization modes.
const (
	// EngineModeWindow holds the line active for Config.EngineWindow; it then
	// goes inactive by itself.
	EngineModeWindow EngineMode = "window"
	// EngineModePulse sends a pulse of Config.EnginePulse; the engine controller
	// runs its own permission window.
	EngineModePulse EngineMode = "pulse"
)

// Pattern is the feedback for one outcome: for each of the LED and the
// buzzer a sequence of durations, alternately on and off, starting with on
// (["200ms", "100ms", "200ms"] is on, off, on). An empty sequence leaves that
// output off.
type Pattern struct {
	// LED is the LED's on/off sequence.
	LED []time.Duration `toml:"led"`
	// Buzzer is the buzzer's on/off sequence.
	Buzzer []time.Duration `toml:"buzzer"`
}

// Patterns holds the pattern of each outcome.
type Patterns struct {
	// Seen plays when a card or phone is seen.
	Seen Pattern `toml:"seen"`
	// Allowed plays when the action was allowed.
	Allowed Pattern `toml:"allowed"`
	// Denied plays when the action was denied.
	Denied Pattern `toml:"denied"`
	// Error plays when the transaction failed.
	Error Pattern `toml:"error"`
}

// For returns the pattern of p; ok is false for an unknown pattern.
func (ps Patterns) For(p hal.Pattern) (pat Pattern, ok bool) {
	switch p {
	case hal.PatternSeen:
		return ps.Seen, true
	case hal.PatternAllowed:
		return ps.Allowed, true
	case hal.PatternDenied:
		return ps.Denied, true
	case hal.PatternError:
		return ps.Error, true
	}
	return Pattern{}, false
}

// Config is the GPIO backend's part of the daemon's configuration, the [hal]
// section of its TOML file. Start from DefaultConfig and set the lines.
type Config struct {
	// Unlock is the door-unlock output (required).
	Unlock Output `toml:"unlock"`
	// Lock is the door-lock output (required).
	Lock Output `toml:"lock"`
	// Engine is the engine-start authorization output (optional). It must be
	// a permission input of the engine controller, never a line a running
	// engine depends on (see the package documentation).
	Engine Output `toml:"engine"`
	// LED is the feedback LED (optional).
	LED Output `toml:"led"`
	// Buzzer is the feedback buzzer (optional).
	Buzzer Output `toml:"buzzer"`
	// DoorInput is the door-state input (optional); active means open.
	DoorInput Input `toml:"door"`

	// UnlockPulse is the length of the unlock pulse. Default 500 ms.
	UnlockPulse time.Duration `toml:"unlock_pulse"`
	// LockPulse is the length of the lock pulse. Default 500 ms.
	LockPulse time.Duration `toml:"lock_pulse"`
	// EngineMode is "window" (default) or "pulse".
	EngineMode EngineMode `toml:"engine_mode"`
	// EngineWindow is how long an engine-start authorization lasts: in
	// window mode how long the line stays active, in pulse mode the
	// controller's own window, used only to report State. Default 30 s.
	EngineWindow time.Duration `toml:"engine_window"`
	// EnginePulse is the length of the pulse in pulse mode. Default 500 ms.
	EnginePulse time.Duration `toml:"engine_pulse"`

	// Patterns are the LED and buzzer patterns per outcome.
	Patterns Patterns `toml:"patterns"`
}

// Limits that Validate enforces.
const (
	MinPulse       = 10 * time.Millisecond // shortest lock, unlock or engine pulse
	MaxPulse       = 10 * time.Second      // longest lock, unlock or engine pulse
	MinWindow      = time.Second           // shortest engine-start window
	MaxWindow      = 10 * time.Minute      // longest engine-start window
	MaxSteps       = 32                    // most steps in one LED or buzzer sequence
	MaxStep        = 10 * time.Second      // longest step of a sequence
	MaxPatternTime = 30 * time.Second      // longest whole sequence
)

// DefaultConfig returns the defaults: 500 ms lock and unlock pulses, a 30 s
// engine-start window (500 ms pulse in pulse mode) and short patterns. It
// wires no line: lines depend on the rig (see README.md).
func DefaultConfig() Config {
	ms := time.Millisecond
	return Config{
		UnlockPulse:  500 * ms,
		LockPulse:    500 * ms,
		EngineMode:   EngineModeWindow,
		EngineWindow: 30 * time.Second,
		EnginePulse:  500 * ms,
		Patterns: Patterns{
			Seen:    Pattern{LED: []time.Duration{100 * ms}, Buzzer: []time.Duration{30 * ms}},
			Allowed: Pattern{LED: []time.Duration{1000 * ms}, Buzzer: []time.Duration{100 * ms}},
			Denied: Pattern{
				LED:    []time.Duration{200 * ms, 200 * ms, 200 * ms, 200 * ms, 200 * ms},
				Buzzer: []time.Duration{200 * ms, 100 * ms, 200 * ms},
			},
			Error: Pattern{
				LED:    []time.Duration{100 * ms, 100 * ms, 100 * ms, 100 * ms, 100 * ms, 100 * ms, 100 * ms, 100 * ms, 100 * ms},
				Buzzer: []time.Duration{600 * ms},
			},
		},
	}
}

// Validate reports every problem of c, each naming its configuration key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", keyPrefix, key, fmt.Sprintf(format, args...)))
	}

	seen := map[string]string{} // line -> key
	line := func(key, spec string, required bool) {
		if spec == "" {
			if required {
				bad(key, "line is required")
			}
			return
		}
		if err := checkLineSpec(spec); err != nil {
			bad(key, "%v", err)
			return
		}
		if other, dup := seen[spec]; dup {
			bad(key, "line %q is also %s%s", spec, keyPrefix, other)
			return
		}
		seen[spec] = key
	}
	line("unlock", c.Unlock.Line, true)
	line("lock", c.Lock.Line, true)
	line("engine", c.Engine.Line, false)
	line("led", c.LED.Line, false)
	line("buzzer", c.Buzzer.Line, false)
	line("door", c.DoorInput.Line, false)
	switch c.DoorInput.Pull {
	case PullAsIs, PullOff, PullUp, PullDown:
	default:
		bad("door.pull", "%q is not one of \"\", %q, %q, %q", c.DoorInput.Pull, PullOff, PullUp, PullDown)
	}

	between := func(key string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			bad(key, "%v is outside [%v, %v]", d, lo, hi)
		}
	}
	between("unlock_pulse", c.UnlockPulse, MinPulse, MaxPulse)
	between("lock_pulse", c.LockPulse, MinPulse, MaxPulse)
	between("engine_window", c.EngineWindow, MinWindow, MaxWindow)
	switch c.EngineMode {
	case EngineModeWindow:
	case EngineModePulse:
		between("engine_pulse", c.EnginePulse, MinPulse, MaxPulse)
	default:
		bad("engine_mode", "%q is neither %q nor %q", c.EngineMode, EngineModeWindow, EngineModePulse)
	}

	for _, p := range []hal.Pattern{hal.PatternSeen, hal.PatternAllowed, hal.PatternDenied, hal.PatternError} {
		pat, _ := c.Patterns.For(p)
		if err := checkSteps(pat.LED); err != nil {
			bad("patterns."+string(p)+".led", "%v", err)
		}
		if err := checkSteps(pat.Buzzer); err != nil {
			bad("patterns."+string(p)+".buzzer", "%v", err)
		}
	}
	return errors.Join(errs...)
}

// checkLineSpec accepts a line name without blanks or slashes, or
// "chip/offset" with a decimal offset.
func checkLineSpec(spec string) error {
	if strings.ContainsAny(spec, " \t\r\n") {
		return fmt.Errorf("line %q contains blanks", spec)
	}
	if _, _, ok, err := splitChipOffset(spec); ok && err != nil {
		return fmt.Errorf("line %q: %v", spec, err)
	}
	return nil
}

// splitChipOffset splits "chip/offset" at its last slash, so that the chip
// may also be a path ("/dev/gpiochip0/17"); ok is false for a plain name.
func splitChipOffset(spec string) (chip string, offset int, ok bool, err error) {
	i := strings.LastIndexByte(spec, '/')
	if i < 0 {
		return "", 0, false, nil
	}
	chip, off := spec[:i], spec[i+1:]
	if chip == "" {
		return "", 0, true, errors.New("chip/offset without a chip")
	}
	n, err := strconv.Atoi(off)
	if err != nil || n < 0 || strings.HasPrefix(off, "+") {
		return "", 0, true, fmt.Errorf("offset %q is not a line number", off)
	}
	return chip, n, true, nil
}

func checkSteps(steps []time.Duration) error {
	if len(steps) > MaxSteps {
		return fmt.Errorf("%d steps, at most %d", len(steps), MaxSteps)
	}
	var total time.Duration
	for i, d := range steps {
		if d <= 0 || d > MaxStep {
			return fmt.Errorf("step %d: %v is outside (0, %v]", i, d, MaxStep)
		}
		total += d
	}
	if total > MaxPatternTime {
		return fmt.Errorf("lasts %v, at most %v", total, MaxPatternTime)
	}
	return nil
}
