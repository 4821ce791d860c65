package gpio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"periph.io/x/conn/v3/gpio"
)

// fakeFinder knows lines by name and by "chip/offset".
type fakeFinder map[string]*recPin

func (f fakeFinder) byName(name string) (gpio.PinIO, error) {
	if p, ok := f[name]; ok {
		return p, nil
	}
	return nil, nil
}

func (f fakeFinder) byChipOffset(chip string, offset int) (gpio.PinIO, error) {
	if p, ok := f[fmt.Sprintf("%s/%d", chip, offset)]; ok {
		return p, nil
	}
	return nil, nil
}

func (fakeFinder) hint() string { return "" }

func TestOpenResolvesAndReleases(t *testing.T) {
	unlock, lock, led := newPin("GPIO17", nil, nil), newPin("GPIO27", nil, nil), newPin("GPIO23", nil, nil)
	f := fakeFinder{"GPIO17": unlock, "gpiochip0/27": lock, "GPIO23": led}
	cfg := DefaultConfig()
	cfg.Unlock.Line = "GPIO17"
	cfg.Lock.Line = "gpiochip0/27"
	cfg.LED.Line = "GPIO23"
	a, err := open(cfg, f, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	if a.unlock.pin != unlock || a.lock.pin != lock || a.led.pin != led || a.engine != nil || a.buzzer != nil || a.door != nil {
		t.Fatalf("lines not resolved as configured")
	}
	if err := a.AuthorizeEngineStart(context.Background()); !errors.Is(err, ErrNotWired) {
		t.Fatalf("engine: %v", err)
	}
	must(t, a.Close())
	for _, p := range []*recPin{unlock, lock, led} {
		if n := p.closed.Load(); n != 1 {
			t.Errorf("%s released %d times, want once", p.N, n)
		}
	}
}

func TestOpenMissingLine(t *testing.T) {
	j := newJournal()
	f := fakeFinder{"GPIO17": newPin("GPIO17", nil, j)}
	cfg := DefaultConfig()
	cfg.Unlock.Line = "GPIO99"
	cfg.Lock.Line = "GPIO17"
	_, err := open(cfg, f)
	if err == nil || err.Error() != `hal.gpio.unlock: line "GPIO99" not found` {
		t.Fatalf("open = %v", err)
	}
	if !errors.Is(err, ErrLineNotFound) {
		t.Fatalf("%v is not ErrLineNotFound", err)
	}
	// The lock line was found but neither driven nor released: it was never
	// requested.
	if es := j.all(); len(es) != 0 || f["GPIO17"].closed.Load() != 0 {
		t.Fatalf("lock line touched: %v, released %d times", es, f["GPIO17"].closed.Load())
	}
}

func TestOpenSameLineTwice(t *testing.T) {
	p := newPin("GPIO17", nil, nil)
	f := fakeFinder{"GPIO17": p, "gpiochip0/17": p}
	cfg := DefaultConfig()
	cfg.Unlock.Line = "GPIO17"
	cfg.Lock.Line = "gpiochip0/17"
	_, err := open(cfg, f)
	if err == nil || err.Error() != `hal.gpio.lock: line "gpiochip0/17" is the line of hal.gpio.unlock` {
		t.Fatalf("open = %v", err)
	}
}

func TestOpenReleasesOnFailure(t *testing.T) {
	unlock := newPin("GPIO17", nil, nil)
	unlock.outErr = errors.New("device or resource busy")
	lock := newPin("GPIO27", nil, nil)
	cfg := DefaultConfig()
	cfg.Unlock.Line, cfg.Lock.Line = "GPIO17", "GPIO27"
	_, err := open(cfg, fakeFinder{"GPIO17": unlock, "GPIO27": lock}, WithLogger(slog.New(slog.DiscardHandler)))
	if err == nil || !strings.Contains(err.Error(), "hal.gpio.unlock: line GPIO17: drive inactive: device or resource busy") {
		t.Fatalf("open = %v", err)
	}
	if unlock.closed.Load() != 1 || lock.closed.Load() != 1 {
		t.Fatalf("lines not released after a failed open")
	}
}

// TestOpenOnThisMachine runs the real Open: periph's host drivers and the
// GPIO character devices. This machine has none, so the line is missing;
// on one that has GPIO chips no line is called GPIO99 either.
func TestOpenOnThisMachine(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Unlock.Line = "GPIO99"
	cfg.Lock.Line = "gpiochip99/0"
	_, err := Open(cfg, WithLogger(slog.New(slog.DiscardHandler)))
	if !errors.Is(err, ErrLineNotFound) {
		t.Fatalf("Open = %v, want ErrLineNotFound", err)
	}
	for _, want := range []string{`hal.gpio.unlock: line "GPIO99" not found`, `hal.gpio.lock: line "gpiochip99/0" not found`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q lacks %q", err, want)
		}
	}
	if _, err := Open(DefaultConfig()); err == nil || !strings.Contains(err.Error(), "hal.gpio.unlock: line is required") {
		t.Fatalf("Open(defaults) = %v", err)
	}
}
