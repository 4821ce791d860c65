package gpio

import (
	"fmt"

	"periph.io/x/conn/v3/gpio"
)

// outLine is one output line: its configuration key, its active level and
// its turn. Whoever drives the line (a pulse, a window, a pattern, Close)
// holds the turn for the whole time, so pulses on one line never overlap.
type outLine struct {
	key       string // configuration key without the "hal." prefix
	pin       gpio.PinOut
	activeLow bool
	turn      chan struct{} // holds a token while the line is taken
}

func newOutLine(key string, pin gpio.PinOut, activeLow bool) *outLine {
	return &outLine{key: key, pin: pin, activeLow: activeLow, turn: make(chan struct{}, 1)}
}

// level is the electrical level that means active (or inactive).
func (l *outLine) level(active bool) gpio.Level {
	return gpio.Level(active != l.activeLow)
}

// set drives the line active or inactive. The caller holds the turn.
func (l *outLine) set(active bool) error {
	if err := l.pin.Out(l.level(active)); err != nil {
		state := "inactive"
		if active {
			state = "active"
		}
		return fmt.Errorf("%s%s: line %s: drive %s: %w", keyPrefix, l.key, l.pin.Name(), state, err)
	}
	return nil
}

// give hands the turn back.
func (l *outLine) give() { <-l.turn }
