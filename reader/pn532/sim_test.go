package pn532_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/reader"
	"github.com/dkvehicled/dkvehicled/reader/pn532"
	"github.com/dkvehicled/dkvehicled/reader/pn532/pn532sim"
)

var _ pn532.UARTPort = (*pn532sim.UART)(nil)

var (
	selectAID = []byte{0x00, 0xA4, 0x04, 0x00, 0x02, 0xA0, 0x00, 0x00}
	ecpFrame  = []byte{0x6A, 0x02, 0xC3, 0x02, 0x01, 0x01, 0xAB, 0xCD}
)

// phone answers SELECT with 6F 00 90 00 and anything else with its own
// data reversed and 90 00; it records the commands.
type phone struct {
	mu   sync.Mutex
	apdu [][]byte
}

func (p *phone) answer(ctx context.Context, apdu []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.apdu = append(p.apdu, slices.Clone(apdu))
	if bytes.Equal(apdu, selectAID) {
		return []byte{0x6F, 0x00, 0x90, 0x00}, nil
	}
	r := slices.Clone(apdu)
	slices.Reverse(r)
	return append(r, 0x90, 0x00), nil
}

func (p *phone) commands() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.apdu)
}

// eventually waits until cond holds (it is not a timing assertion: the
// bound only stops a broken test).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("never happened: %s", what)
		}
	}
}

func testOptions() *pn532.Options {
	return &pn532.Options{Name: "door", PollInterval: 5 * time.Millisecond, Timeout: 50 * time.Millisecond}
}

// The whole loop over I2C: the reader polls (with the ECP frame before each
// poll), a phone arrives, answers a SELECT, leaves, and WaitRemoved returns.
func TestSimI2CFullLoop(t *testing.T) {
	chip := pn532sim.New()
	o := testOptions()
	o.ECPFrame = ecpFrame
	d, err := pn532.NewI2C(chip.I2C(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	type result struct {
		card reader.Card
		err  error
	}
	found := make(chan result)
	go func() {
		c, err := d.WaitCard(ctx)
		found <- result{c, err}
	}()
	eventually(t, "an empty poll", func() bool { return slices.Contains(chip.Commands(), 0x4A) })
	var p phone
	chip.Place(p.answer)
	r := <-found
	if r.err != nil {
		t.Fatal(r.err)
	}
	card := r.card
	if tg := card.(*pn532.Card).Target(); tg.SAK != 0x20 || len(tg.ATS) == 0 {
		t.Errorf("target %+v", tg)
	}
	resp, err := card.Transceive(ctx, selectAID)
	if err != nil || !bytes.Equal(resp, []byte{0x6F, 0x00, 0x90, 0x00}) {
		t.Fatalf("SELECT: % X, %v", resp, err)
	}
	if got := p.commands(); len(got) != 1 || !bytes.Equal(got[0], selectAID) {
		t.Errorf("the phone got % X", got)
	}
	chip.Remove()
	if err := card.WaitRemoved(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := card.Transceive(ctx, selectAID); !errors.Is(err, reader.ErrCardGone) {
		t.Errorf("Transceive after removal: %v, want ErrCardGone", err)
	}
	if err := card.Close(); err != nil {
		t.Fatal(err)
	}

	thru := chip.Thru()
	if len(thru) < 2 {
		t.Fatalf("%d ECP frames, want one per poll", len(thru))
	}
	for _, f := range thru {
		if !bytes.Equal(f, ecpFrame) {
			t.Fatalf("ECP frame % X, want % X", f, ecpFrame)
		}
	}
	cmds := chip.Commands()
	if i := slices.Index(cmds, 0x42); i < 0 || i+1 >= len(cmds) || cmds[i+1] != 0x4A {
		t.Errorf("InCommunicateThru is not followed by InListPassiveTarget: % X", cmds)
	}
	h := d.Health()
	if !h.OK || h.Firmware != "PN532 v1.6" || !h.ECP || h.Errors != 0 || d.Name() != "door" {
		t.Errorf("health %+v", h)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// Chaining both ways over HSU: a 400-byte command and a 402-byte answer.
func TestSimUARTLongAPDU(t *testing.T) {
	chip := pn532sim.New()
	d, err := pn532.NewUART(chip.UART(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	var p phone
	chip.Place(p.answer)
	ctx := context.Background()
	card, err := d.WaitCard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cmd := make([]byte, 400)
	for i := range cmd {
		cmd[i] = byte(i)
	}
	resp, err := card.Transceive(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(cmd)
	slices.Reverse(want)
	want = append(want, 0x90, 0x00)
	if !bytes.Equal(resp, want) {
		t.Errorf("answer of %d bytes, want %d", len(resp), len(want))
	}
	if got := p.commands(); len(got) != 1 || !bytes.Equal(got[0], cmd) {
		t.Errorf("the phone got %d commands", len(got))
	}
}

// SPI through a controller that shifts MSB first, with the driver's bit
// reversal.
func TestSimSPIBitReversal(t *testing.T) {
	chip := pn532sim.New()
	o := testOptions()
	o.BitReverse = true
	d, err := pn532.NewSPI(chip.SPI(), o)
	if err != nil {
		t.Fatal(err)
	}
	var p phone
	chip.Place(p.answer)
	ctx := context.Background()
	card, err := d.WaitCard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := card.Transceive(ctx, selectAID); err != nil || !bytes.Equal(resp, []byte{0x6F, 0x00, 0x90, 0x00}) {
		t.Fatalf("SELECT: % X, %v", resp, err)
	}
	if h := d.Health(); h.Firmware != "PN532 v1.6" {
		t.Errorf("health %+v", h)
	}
}

// A chip that stops answering is reset through RSTPDN and initialised
// again: the reader counts the error and the recovery.
func TestSimRecoveryWithReset(t *testing.T) {
	chip := pn532sim.New()
	o := testOptions()
	o.Reset = chip.ResetPin()
	d, err := pn532.NewI2C(chip.I2C(), o)
	if err != nil {
		t.Fatal(err)
	}
	var p phone
	chip.Place(p.answer)
	ctx := context.Background()
	card, err := d.WaitCard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := card.Close(); err != nil {
		t.Fatal(err)
	}
	chip.Fail(pn532sim.Silent)
	card, err = d.WaitCard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := card.Transceive(ctx, selectAID); err != nil {
		t.Fatal(err)
	}
	h := d.Health()
	if !h.OK || h.Errors == 0 || h.Recoveries != 1 {
		t.Errorf("health %+v, want OK with errors and one recovery", h)
	}
}

// Without a reset line the reader keeps trying with backoff until the chip
// answers again; meanwhile it reports itself unhealthy.
func TestSimRecoveryWithoutReset(t *testing.T) {
	chip := pn532sim.New()
	d, err := pn532.NewI2C(chip.I2C(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() {
		_, err := d.WaitCard(ctx)
		done <- err
	}()
	eventually(t, "the first poll", func() bool { return d.Health().OK })
	chip.Fail(pn532sim.Silent)
	eventually(t, "unhealthy", func() bool { return !d.Health().OK })
	if h := d.Health(); h.Errors == 0 || h.Detail == "" {
		t.Errorf("health %+v", h)
	}
	chip.Fail(pn532sim.Healthy)
	eventually(t, "recovered", func() bool { return d.Health().Recoveries == 1 })
	if !d.Health().OK {
		t.Errorf("health %+v after recovery", d.Health())
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("WaitCard returned %v, want context.Canceled", err)
	}
}

// A corrupted response and a NACK are recovered within the exchange; they
// are no reader errors.
func TestSimChecksumAndNACK(t *testing.T) {
	chip := pn532sim.New()
	d, err := pn532.NewUART(chip.UART(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	var p phone
	chip.Place(p.answer)
	ctx := context.Background()
	card, err := d.WaitCard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []pn532sim.Fault{pn532sim.BadChecksum, pn532sim.NACK} {
		chip.Fail(f)
		if resp, err := card.Transceive(ctx, selectAID); err != nil || !bytes.Equal(resp, []byte{0x6F, 0x00, 0x90, 0x00}) {
			t.Fatalf("fault %v: % X, %v", f, resp, err)
		}
	}
	if got := len(p.commands()); got != 2 {
		t.Errorf("the phone got %d commands, want 2", got)
	}
	if h := d.Health(); !h.OK || h.Errors != 0 {
		t.Errorf("health %+v", h)
	}
}

func TestSimWaitCardEndsWithContext(t *testing.T) {
	chip := pn532sim.New()
	d, err := pn532.NewI2C(chip.I2C(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := d.WaitCard(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want DeadlineExceeded", err)
	}
}
