package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/dkvehicled/dkvehicled/control"
)

// eventHeader names the columns of an event.
var eventHeader = []string{"TIME", "TYPE", "READER", "RESULT", "ACTION", "KEY", "PATH", "REASON", "MS", "DETAIL"}

// streamWidths are the column widths of the live event stream, whose lines
// are printed one by one and cannot be aligned afterwards.
var streamWidths = []int{12, 7, 10, 8, 10, 27, 8, 18, 8}

// eventCells is an event's row, its time in the given layout.
func eventCells(ev control.Event, layout string) []string {
	ms := "-"
	if ev.Total > 0 {
		ms = millis(ev.Total)
	}
	return []string{when(ev.Time, layout), ev.Type, dash(ev.Reader), dash(ev.Result), dash(ev.Action),
		keyLabel(ev.KeyID, ev.FriendlyName), dash(ev.Path), dash(ev.Reason), ms, eventDetail(ev)}
}

// eventDetail gathers what an event has beyond the columns.
func eventDetail(ev control.Event) string {
	var parts []string
	if ev.Detail != "" {
		parts = append(parts, ev.Detail)
	}
	if ev.SpeedLimitKPH > 0 {
		parts = append(parts, fmt.Sprintf("speed limit %d km/h", ev.SpeedLimitKPH))
	}
	if ev.FirstUse {
		parts = append(parts, "first use")
	}
	if ev.Provisioned > 0 {
		parts = append(parts, fmt.Sprintf("%d slot(s) provisioned", ev.Provisioned))
	}
	if ev.By != nil {
		parts = append(parts, fmt.Sprintf("by uid %d", *ev.By))
	}
	return strings.Join(parts, ", ")
}

// showTap prints a tap's (or pairing's) outcome in a sentence, its row and
// its phases.
func showTap(w io.Writer, ev control.Event) {
	what := "tap"
	if ev.Type == "pairing" {
		what = "pairing"
	}
	outcome := fmt.Sprintf("%s on %s: %s", what, dash(ev.Reader), strings.ToUpper(dash(ev.Result)))
	if ev.Action != "" {
		outcome += " " + ev.Action
	}
	if ev.Reason != "" {
		outcome += " (" + ev.Reason + ")"
	}
	fmt.Fprintf(w, "%s\n\n", outcome)
	t := newTable(w)
	row(t, eventHeader...)
	row(t, eventCells(ev, clock)...)
	t.Flush()
	if len(ev.Phases) > 0 {
		phases := make([]string, len(ev.Phases))
		for i, p := range ev.Phases {
			phases[i] = fmt.Sprintf("%s %s ms", p.Name, millis(p.Time))
		}
		fmt.Fprintf(w, "\nphases: %s\n", strings.Join(phases, ", "))
	}
}

func eventStreamHeader() string { return padded(eventHeader) }

func eventStreamLine(ev control.Event) string { return padded(eventCells(ev, clock)) }

// padded lays cells out in the stream's fixed-width columns.
func padded(cells []string) string {
	var b strings.Builder
	for i, c := range cells {
		b.WriteString(c)
		if i < len(streamWidths) {
			b.WriteString(strings.Repeat(" ", max(streamWidths[i]-len(c), 0)+2))
		}
	}
	return strings.TrimRight(b.String(), " ")
}
