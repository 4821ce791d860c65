package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
)

// Time layouts: dates for stored things, clock times for live events.
const (
	dateTime = "2006-01-02 15:04:05"
	clock    = "15:04:05.000"
)

// newTable aligns tab-separated cells.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
}

// row writes one table row. Empty cells at its end are left out, so that
// the line does not end in padding.
func row(w io.Writer, cells ...string) {
	for len(cells) > 0 && cells[len(cells)-1] == "" {
		cells = cells[:len(cells)-1]
	}
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// printJSON prints a result indented.
func printJSON(w io.Writer, raw json.RawMessage) error {
	if len(raw) == 0 {
		raw = json.RawMessage("null")
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return fmt.Errorf("printing JSON: %w", err)
	}
	b.WriteByte('\n')
	_, err := b.WriteTo(w)
	return err
}

// shortID is the first 12 hex digits of a key id, enough to name it.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// keyLabel is a key's short id and friendly name.
func keyLabel(id, name string) string {
	switch {
	case id == "":
		return "-"
	case name == "":
		return shortID(id)
	}
	return shortID(id) + " (" + name + ")"
}

// when formats a time in the local zone; the zero time is "-".
func when(t time.Time, layout string) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(layout)
}

// window formats a validity window.
func window(notBefore, notAfter time.Time) string {
	switch {
	case notBefore.IsZero() && notAfter.IsZero():
		return "always"
	case notAfter.IsZero():
		return "from " + when(notBefore, dateTime)
	case notBefore.IsZero():
		return "until " + when(notAfter, dateTime)
	}
	return when(notBefore, dateTime) + " to " + when(notAfter, dateTime)
}

// millis formats a duration in milliseconds with 2 decimals.
func millis(d control.Duration) string {
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}

// uptime formats a long duration to the second, with days.
func uptime(d control.Duration) string {
	t := time.Duration(d).Round(time.Second)
	if days := t / (24 * time.Hour); days > 0 {
		return fmt.Sprintf("%dd%v", days, t-days*24*time.Hour)
	}
	return t.String()
}

// size formats a number of bytes.
func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// choose is yes if b, else no.
func choose(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
