//go:build linux

package pty

import (
	"bytes"
	"io"
	"testing"
)

// Every byte value passes unchanged both ways: no echo, no CR/LF mapping,
// no line buffering, no signals.
func TestRawBothWays(t *testing.T) {
	master, slave, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, dir := range []struct {
		name string
		w    io.Writer
		r    io.Reader
	}{{"master to slave", master, slave}, {"slave to master", slave, master}} {
		if _, err := dir.w.Write(all); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(all))
		if _, err := io.ReadFull(dir.r, got); err != nil {
			t.Fatalf("%s: %v", dir.name, err)
		}
		if !bytes.Equal(got, all) {
			t.Fatalf("%s: got % X", dir.name, got)
		}
	}
}
