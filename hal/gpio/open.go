package gpio

import (
	"errors"
	"fmt"
	"reflect"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
	"periph.io/x/host/v3/gpioioctl"
)

// ErrLineNotFound is matched (errors.Is) by the error for a configured line
// that does not exist.
var ErrLineNotFound = errors.New("line not found")

// lineNotFound names the configuration key and the line.
type lineNotFound struct {
	key, line, hint string
}

func (e *lineNotFound) Error() string {
	return fmt.Sprintf("%s%s: line %q not found%s", keyPrefix, e.key, e.line, e.hint)
}

func (e *lineNotFound) Is(target error) bool { return target == ErrLineNotFound }

// Open checks cfg, initialises periph.io's host drivers, finds every
// configured line on the GPIO character devices (/dev/gpiochip*) and
// returns an Actuator built by New, with every output inactive. Close gives
// the lines back to the kernel.
//
// A line is a name as periph's registry knows it ("GPIO17", or an alias such
// as "P1_11" on boards that register one) or chip/offset ("gpiochip0/17",
// "/dev/gpiochip0/17"). Only character-device lines are used: a name that
// another driver registered (the Raspberry Pi's memory-mapped GPIO driver)
// is mapped to the character-device line of the same name, so the kernel
// owns the line while the daemon runs and takes it back when the daemon
// exits, however it exits.
func Open(cfg Config, opts ...Option) (*Actuator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("hal: periph host init: %w", err)
	}
	return open(cfg, chardev{}, opts...)
}

// finder finds lines; chardev is the real one, tests use fakes.
type finder interface {
	// byName returns the line called name, or nil.
	byName(name string) (gpio.PinIO, error)
	// byChipOffset returns line offset of chip, or nil.
	byChipOffset(chip string, offset int) (gpio.PinIO, error)
	// hint explains a missing line ("" or " (...)").
	hint() string
}

func open(cfg Config, f finder, opts ...Option) (*Actuator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var (
		errs  []error
		found []gpio.PinIO
		owner = map[gpio.PinIO]string{} // line -> key
	)
	find := func(key, spec string) gpio.PinIO {
		if spec == "" {
			return nil
		}
		var p gpio.PinIO
		var err error
		if chip, offset, ok, _ := splitChipOffset(spec); ok {
			p, err = f.byChipOffset(chip, offset)
		} else {
			p, err = f.byName(spec)
		}
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s%s: line %q: %w", keyPrefix, key, spec, err))
			return nil
		case p == nil:
			errs = append(errs, &lineNotFound{key: key, line: spec, hint: f.hint()})
			return nil
		}
		if reflect.TypeOf(p).Comparable() {
			if other, dup := owner[p]; dup {
				errs = append(errs, fmt.Errorf("%s%s: line %q is the line of %s%s", keyPrefix, key, spec, keyPrefix, other))
				return nil
			}
			owner[p] = key
		}
		found = append(found, p)
		return p
	}
	var pins Pins
	// Assign only non-nil pins: a nil gpio.PinIO in a gpio.PinOut field
	// would not be nil.
	if p := find("unlock", cfg.Unlock.Line); p != nil {
		pins.Unlock = p
	}
	if p := find("lock", cfg.Lock.Line); p != nil {
		pins.Lock = p
	}
	if p := find("engine", cfg.Engine.Line); p != nil {
		pins.Engine = p
	}
	if p := find("led", cfg.LED.Line); p != nil {
		pins.LED = p
	}
	if p := find("buzzer", cfg.Buzzer.Line); p != nil {
		pins.Buzzer = p
	}
	if p := find("door", cfg.DoorInput.Line); p != nil {
		pins.Door = p
	}
	release := func() {
		for _, p := range found {
			if c, ok := p.(interface{ Close() }); ok {
				c.Close()
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	a, err := New(cfg, pins, opts...)
	if err != nil {
		release()
		return nil, err
	}
	a.release = release
	return a, nil
}

// chardev finds lines through periph's registry and gpioioctl's chips.
type chardev struct{}

func (chardev) byName(name string) (gpio.PinIO, error) {
	p := gpioreg.ByName(name)
	if p == nil {
		if l := chipLine(name); l != nil {
			return l, nil
		}
		return nil, nil
	}
	for {
		r, ok := p.(gpio.RealPin)
		if !ok {
			break
		}
		p = r.Real()
	}
	if l, ok := p.(*gpioioctl.GPIOLine); ok {
		return l, nil
	}
	if l := chipLine(p.Name()); l != nil {
		return l, nil
	}
	return nil, fmt.Errorf("resolves to %s, which is not a GPIO character-device line", p)
}

// chipLine returns the character-device line called name, or nil.
func chipLine(name string) *gpioioctl.GPIOLine {
	for _, c := range gpioioctl.Chips {
		if l := c.ByName(name); l != nil {
			return l
		}
	}
	return nil
}

func (chardev) byChipOffset(chip string, offset int) (gpio.PinIO, error) {
	for _, c := range gpioioctl.Chips {
		if c.Name() != chip && c.Path() != chip && c.Label() != chip {
			continue
		}
		if offset >= c.LineCount() {
			return nil, fmt.Errorf("%s has %d lines", c.Name(), c.LineCount())
		}
		return c.ByNumber(offset), nil
	}
	return nil, nil
}

func (chardev) hint() string {
	if len(gpioioctl.Chips) == 0 {
		return " (no GPIO character device: /dev/gpiochip* missing or not readable)"
	}
	return ""
}
