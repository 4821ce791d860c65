//go:build pcsc

package pcsc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ebfe/scard"

	"github.com/dkvehicled/dkvehicled/internal/vpcd"
)

// These tests need a real pcscd with vsmartcard's vpcd driver
// (apt-get install pcscd vsmartcard-vpcd libpcsclite-dev pkg-config) and
// root, so that they can start pcscd themselves. A pcscd already running is
// used and left alone, except by TestPCSCDRestart, which must own its pcscd.

const (
	pcscdSocket = "/run/pcscd/pcscd.comm"
	slot0       = "Virtual PCD 00 00"
	slot1       = "Virtual PCD 00 01"
)

// ownPCSCD is the pcscd these tests started; nil when one was running
// already.
var ownPCSCD *pcscd

func TestMain(m *testing.M) {
	if os.Getenv(cardProcessEnv) != "" {
		os.Exit(cardProcess())
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if !pcscdUp() {
		d, err := startPCSCD()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		ownPCSCD = d
		defer func() { ownPCSCD.stop() }()
	}
	return m.Run()
}

// cardProcessEnv makes the test binary a virtual card in vpcd reader 0
// that answers 6F 00 90 00 to everything (see BenchmarkTransceive).
const cardProcessEnv = "DKVEHICLED_TEST_VPCD_CARD"

func cardProcess() int {
	c, err := vpcd.Dial(context.Background(), vpcd.Addr(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rsp := []byte{0x6F, 0x00, 0x90, 0x00}
	if err := c.Serve(context.Background(), func([]byte) []byte { return rsp }); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// pcscdUp reports whether a pcscd answers on its socket.
func pcscdUp() bool {
	c, err := net.Dial("unix", pcscdSocket)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// pcscd is a pcscd process started by the tests.
type pcscd struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startPCSCD runs pcscd in the foreground and waits until it lists both
// vpcd readers.
func startPCSCD() (*pcscd, error) {
	cmd := exec.Command("pcscd", "--foreground")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pcscd (apt-get install pcscd vsmartcard-vpcd): %w", err)
	}
	d := &pcscd{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(d.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if names, err := listOnce(); err == nil && slices.Contains(names, slot0) && slices.Contains(names, slot1) {
			return d, nil
		}
		select {
		case <-d.exited:
			return nil, fmt.Errorf("pcscd exited at start: %v", cmd.ProcessState)
		case <-time.After(100 * time.Millisecond):
		}
	}
	d.kill(syscall.SIGKILL)
	return nil, fmt.Errorf("pcscd started but did not list %q and %q within 10 s (is vsmartcard-vpcd installed?)", slot0, slot1)
}

func listOnce() ([]string, error) {
	sc, err := scard.EstablishContext()
	if err != nil {
		return nil, err
	}
	defer sc.Release()
	return sc.ListReaders()
}

// kill sends sig to the pcscd process (by its PID) and waits until it exited.
func (d *pcscd) kill(sig syscall.Signal) error {
	if err := d.cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-d.exited:
		return nil
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
		return fmt.Errorf("pcscd did not exit on %v", sig)
	}
}

func (d *pcscd) stop() error { return d.kill(syscall.SIGTERM) }

// restartPCSCD stops the tests' own pcscd with sig, calls between while it
// is down, and starts a new one.
func restartPCSCD(t *testing.T, sig syscall.Signal, between func()) {
	t.Helper()
	if err := ownPCSCD.kill(sig); err != nil {
		t.Fatal(err)
	}
	between()
	d, err := startPCSCD()
	if err != nil {
		t.Fatal(err)
	}
	ownPCSCD = d
}

// insert connects a virtual card answering with handler to vpcd reader n.
// The card stays until the test ends or the caller closes it.
func insert(t testing.TB, n int, handler func([]byte) []byte) *vpcd.Card {
	t.Helper()
	return insertCard(t, n, handler, nil)
}

// insertCard is insert with a callback for the reader's power controls.
func insertCard(t testing.TB, n int, handler func([]byte) []byte, onControl func(vpcd.Control)) *vpcd.Card {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := vpcd.Dial(ctx, vpcd.Addr(n))
	if err != nil {
		t.Fatal(err)
	}
	c.OnControl = onControl
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := c.Serve(context.Background(), handler); err != nil {
			t.Errorf("virtual card %d: %v", n, err)
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-served
	})
	return c
}

// eventually waits up to 5 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
