// Package gpio is the hal.Actuator backend that drives the vehicle's outputs
// through Linux GPIO character devices (/dev/gpiochip*) with periph.io:
// door unlock and lock pulses, the engine-start authorization, a feedback LED
// and buzzer, and an optional door-state input.
//
// Open resolves the lines named in a Config and builds the Actuator; New
// builds one from lines already resolved (tests pass periph's gpiotest pins
// and a fake Clock). README.md beside this file describes the wiring of the Raspberry Pi
// bench rig.
//
// # Engine-start authorization
//
// The engine line is a time-limited permission handed to the engine
// controller: a pulse (EngineModePulse) or a level held for a window
// (EngineModeWindow) that ends by itself. It must NEVER be wired to anything
// a running engine depends on (ignition or run relay, fuel pump, injector or
// ECU power): the window ends, Close drives the line inactive and a crash or
// a power cut of the controller releases it, all while the car may be
// moving. Wire it only to a start-permission input that the engine
// controller reads before it cranks.
//
// # Nothing acts at start or at shutdown
//
// New drives every output to its inactive level before anything else (no
// pulse, no authorization); Close stops patterns and timers, cuts a running
// pulse short and leaves every output inactive. Active-low lines are
// inverted in software, per line.
//
// One caveat comes from periph.io's gpioioctl (host v3.8.5): the first Out
// on a line switches it to output at the low level and only then writes the
// level asked for, two system calls apart. An active-low line is therefore
// low (active) for a few microseconds when the daemon starts. A relay does
// not react to that; a logic-level input might, so wire the engine line
// active-high.
//
// When the process dies without Close, the kernel releases its lines. What a
// released line then does depends on the GPIO driver: it may go back to
// being an input, or keep driving its last level. The wiring must therefore
// make the inactive level the safe default (pull resistors on the relay
// driver inputs, so an input line reads inactive), and a stuck line must not
// be able to grant more than the engine controller's own window. Restarting
// the daemon drives every output inactive again.
//
// # Lock state
//
// State reports the lock state that the last lock or unlock pulse set; it is
// hal.Locked at start (the vehicle is assumed parked and locked). There is
// no lock-state input: the optional door input reports whether the door is
// open, never whether it is locked.
//
// # Concurrency
//
// All methods are safe for concurrent use. Pulses and windows on one line
// never overlap; lock and unlock pulses never overlap either. Feedback
// returns at once and a new pattern replaces the running one.
//
// # Logging
//
// One log/slog line per action with stable keys: action (unlock, lock,
// engine_start, engine_window_end, feedback, close), line, ms, window_ms,
// pattern, mode.
package gpio
