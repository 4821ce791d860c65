//go:build pcsc

package pcsc

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/internal/vpcd"
	"github.com/dkvehicled/dkvehicled/reader"
)

var selectCmd = []byte{0x00, 0xA4, 0x04, 0x00, 0x0D, 0xA0, 0x00, 0x00, 0x08, 0x09, 0x43, 0x43, 0x43, 0x44, 0x4B, 0x41, 0x76, 0x31, 0x00}

func newManager(t *testing.T) *Manager {
	t.Helper()
	m, err := NewManager()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func open(t *testing.T, m *Manager, o Options) *pcscReader {
	t.Helper()
	r, err := m.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r.(*pcscReader)
}

func (r *pcscReader) dev() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.device
}

// waitCard runs WaitCard with a 5 s deadline.
func waitCard(t *testing.T, r reader.Reader) reader.Card {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := r.WaitCard(ctx)
	if err != nil {
		t.Fatalf("WaitCard: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// answer is a card handler that answers every command with rsp and counts.
type answer struct {
	rsp []byte

	mu   sync.Mutex
	seen [][]byte
}

func (a *answer) handle(cmd []byte) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen = append(a.seen, cmd)
	return a.rsp
}

func (a *answer) commands() [][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen)
}

func TestListReaders(t *testing.T) {
	names, err := newManager(t).ListReaders()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, slot0) || !slices.Contains(names, slot1) {
		t.Fatalf("readers %q", names)
	}
}

func TestOpenByPattern(t *testing.T) {
	m := newManager(t)
	door := open(t, m, Options{Name: "door", Reader: "Virtual PCD 00 0?"})
	dash := open(t, m, Options{Name: "dashboard", Reader: "Virtual PCD 00 0?"})
	if door.dev() != slot0 || dash.dev() != slot1 {
		t.Fatalf("door on %q, dashboard on %q", door.dev(), dash.dev())
	}
	if door.Name() != "door" || !door.Health().OK || !strings.Contains(door.Health().Detail, slot0) {
		t.Fatalf("door: %q %+v", door.Name(), door.Health())
	}

	// a third reader finds no free match and waits for one
	third := open(t, m, Options{Reader: "Virtual PCD * 0?"})
	if h := third.Health(); h.OK || h.Errors != 1 || !strings.Contains(h.Detail, "no free reader matches") {
		t.Fatalf("third: %+v", h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go third.WaitCard(ctx)
	door.Close()
	eventually(t, "third reader takes the door's", func() bool { return third.Health().OK })
	if third.dev() != slot0 || third.Health().Recoveries != 1 {
		t.Fatalf("third on %q: %+v", third.dev(), third.Health())
	}

	if r := open(t, newManager(t), Options{Reader: "Virtual PCD * 01"}); r.dev() != slot1 {
		t.Fatalf("glob with * in the middle: %q", r.dev())
	}
	r := open(t, m, Options{Reader: "ACS ACR122U*"})
	if h := r.Health(); h.OK || !strings.Contains(h.Detail, `"ACS ACR122U*"`) || !strings.Contains(h.Detail, slot1) {
		t.Fatalf("no match: %+v", h)
	}
}

func TestCardRoundTrip(t *testing.T) {
	r := open(t, newManager(t), Options{Reader: slot0})
	a := &answer{rsp: []byte{0x6F, 0x00, 0x90, 0x00}}
	vcard := insert(t, 0, a.handle)

	c := waitCard(t, r)
	rsp, err := c.Transceive(context.Background(), selectCmd)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rsp, a.rsp) {
		t.Fatalf("response % X", rsp)
	}
	if seen := a.commands(); len(seen) != 1 || !bytes.Equal(seen[0], selectCmd) {
		t.Fatalf("card saw % X", seen)
	}

	vcard.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitRemoved(ctx); err != nil {
		t.Fatalf("WaitRemoved: %v", err)
	}
	_, err = c.Transceive(context.Background(), selectCmd)
	if !errors.Is(err, reader.ErrCardGone) {
		t.Fatalf("Transceive after the card left: %v", err)
	}
	t.Logf("Transceive after removal: %v", err)
	if err := c.Close(); err != nil {
		t.Fatalf("Close after removal: %v", err)
	}
	if _, err := c.Transceive(context.Background(), selectCmd); !errors.Is(err, ErrClosed) {
		t.Fatalf("Transceive after Close: %v", err)
	}
	if h := r.Health(); !h.OK || h.Errors != 0 {
		t.Fatalf("a card leaving is not a reader error: %+v", h)
	}
}

func TestGetResponseThroughPCSCD(t *testing.T) {
	r := open(t, newManager(t), Options{Reader: slot1})
	insert(t, 1, func(cmd []byte) []byte {
		if cmd[1] == 0xC0 { // GET RESPONSE
			return []byte{0x03, 0x04, 0x90, 0x00}
		}
		return []byte{0x01, 0x02, 0x61, 0x02}
	})
	c := waitCard(t, r)
	res, err := apdu.Transmit(context.Background(), c, apdu.Command{CLA: 0x80, INS: 0xCA, Ne: 256})
	if err != nil || !res.OK() || !bytes.Equal(res.Data, []byte{1, 2, 3, 4}) {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestCloseUnpowersCard(t *testing.T) {
	r := open(t, newManager(t), Options{Reader: slot0})
	off := make(chan struct{}, 10)
	insertCard(t, 0, (&answer{rsp: []byte{0x90, 0x00}}).handle, func(c vpcd.Control) {
		if c == vpcd.PowerOff {
			off <- struct{}{}
		}
	})
	c := waitCard(t, r)
	if _, err := c.Transceive(context.Background(), selectCmd); err != nil {
		t.Fatal(err)
	}
	for len(off) > 0 {
		<-off
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-off:
	case <-time.After(5 * time.Second):
		t.Fatal("the card was not powered down by Close")
	}
	// the card is still there: WaitRemoved keeps waiting
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := c.WaitRemoved(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitRemoved with the card present: %v", err)
	}
}

func TestTwoReadersAtOnce(t *testing.T) {
	m := newManager(t)
	readers := []*pcscReader{
		open(t, m, Options{Name: "door", Reader: slot0}),
		open(t, m, Options{Name: "dashboard", Reader: slot1}),
	}
	answers := []*answer{{rsp: []byte{0xD0, 0x90, 0x00}}, {rsp: []byte{0xDA, 0x90, 0x00}}}

	var wg sync.WaitGroup
	cards := make([]reader.Card, 2)
	errs := make([]error, 2)
	for i, r := range readers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			cards[i], errs[i] = r.WaitCard(ctx)
		})
	}
	insert(t, 1, answers[1].handle)
	insert(t, 0, answers[0].handle)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
		t.Cleanup(func() { cards[i].Close() })
	}

	// Waits for removal on both readers do not hold up the exchanges: each
	// runs on a PC/SC context of its own (sharing one, every exchange would
	// queue behind a wait slice of 500 ms, 25 s for the 50 below).
	ctx, cancel := context.WithCancel(context.Background())
	removed := make(chan error, 2)
	for _, c := range cards {
		go func() { removed <- c.WaitRemoved(ctx) }()
	}
	time.Sleep(50 * time.Millisecond)
	exchanged := make(chan struct{})
	go func() {
		defer close(exchanged)
		var wg sync.WaitGroup
		for i, c := range cards {
			wg.Go(func() {
				for range 50 {
					rsp, err := c.Transceive(context.Background(), selectCmd)
					if err != nil || !bytes.Equal(rsp, answers[i].rsp) {
						t.Errorf("reader %d: % X, %v", i, rsp, err)
						return
					}
				}
			})
		}
		wg.Wait()
	}()
	select {
	case <-exchanged:
	case <-time.After(5 * time.Second):
		t.Fatal("exchanges held up by the waits for removal")
	}
	cancel()
	for range cards {
		if err := <-removed; !errors.Is(err, context.Canceled) {
			t.Errorf("WaitRemoved: %v", err)
		}
	}
	for i, a := range answers {
		if n := len(a.commands()); n != 50 {
			t.Errorf("card %d saw %d commands", i, n)
		}
	}
}

func TestWaitCardCancel(t *testing.T) {
	r := open(t, newManager(t), Options{Reader: slot0})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.WaitCard(ctx)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitCard: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("WaitCard did not return after cancel")
	}

	go func() {
		_, err := r.WaitCard(context.Background())
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	r.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("WaitCard after Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("WaitCard did not return after Close")
	}
}

func TestPCSCDRestart(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			if ownPCSCD == nil {
				t.Fatal("a pcscd not started by these tests is running; stop it " +
					"(systemctl stop pcscd.socket pcscd.service) so that the test can restart its own")
			}
			r := open(t, newManager(t), Options{Reader: slot0, RetryInterval: 250 * time.Millisecond})
			type result struct {
				c   reader.Card
				err error
			}
			got := make(chan result, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			go func() {
				c, err := r.WaitCard(ctx)
				got <- result{c, err}
			}()

			restartPCSCD(t, sig, func() {
				eventually(t, "unhealthy while pcscd is down", func() bool { return !r.Health().OK })
				h := r.Health()
				if h.Errors != 1 || h.Detail == "" {
					t.Errorf("while down: %+v", h)
				}
				t.Logf("while down: %s", h.Detail)
			})
			back := time.Now()
			eventually(t, "healthy after pcscd restarted", func() bool { return r.Health().OK })
			t.Logf("reader ready %v after pcscd listed it again", time.Since(back).Round(time.Millisecond))
			if h := r.Health(); h.Recoveries != 1 {
				t.Errorf("after restart: %+v", h)
			}

			insert(t, 0, (&answer{rsp: []byte{0x90, 0x00}}).handle)
			var res result
			select {
			case res = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("card inserted after the restart not seen")
			}
			if res.err != nil {
				t.Fatalf("WaitCard: %v", res.err)
			}
			defer res.c.Close()
			if _, err := res.c.Transceive(context.Background(), selectCmd); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNoPseudoAPDUsForOtherReaders(t *testing.T) {
	r := open(t, newManager(t), Options{Reader: slot0, Feedback: true, ECPFrame: []byte{0x6A, 0x02}})
	if h := r.Health(); !h.OK || h.ECP || h.Firmware != "" {
		t.Fatalf("%+v", h)
	}
	a := &answer{rsp: []byte{0x90, 0x00}}
	insert(t, 0, a.handle)
	c := waitCard(t, r)
	for s := range reader.SignalError + 1 {
		if err := r.Feedback(context.Background(), s); err != nil {
			t.Fatalf("Feedback %v: %v", s, err)
		}
	}
	c.Close()
	if seen := a.commands(); len(seen) != 0 {
		t.Fatalf("a plain reader's card saw % X", seen)
	}
}

func TestFeedbackPaths(t *testing.T) {
	// Pretend the vpcd reader is an ACR122U to follow the paths feedback
	// takes; vpcd itself has no LED and no escape.
	r := open(t, newManager(t), Options{Reader: slot0, Feedback: true})
	r.mu.Lock()
	r.acr = true
	r.mu.Unlock()

	// no card: the escape, which vpcd refuses with a readable error
	err := r.Feedback(context.Background(), reader.SignalDenied)
	var pe *Error
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "SCardControl(escape)") {
		t.Fatalf("escape on vpcd: %v", err)
	}
	t.Logf("escape on vpcd: %v", err)

	// a card present: the pseudo-APDU goes through the card's connection
	a := &answer{rsp: []byte{0x90, 0x02}}
	insert(t, 0, a.handle)
	waitCard(t, r)
	if err := r.Feedback(context.Background(), reader.SignalAllowed); err != nil {
		t.Fatal(err)
	}
	want, _ := feedbackAPDU(reader.SignalAllowed)
	if seen := a.commands(); len(seen) != 1 || !bytes.Equal(seen[0], want) {
		t.Fatalf("card saw % X", seen)
	}
}
