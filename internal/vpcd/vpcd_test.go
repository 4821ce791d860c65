package vpcd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeReader plays the vpcd driver's side of one connection.
type fakeReader struct {
	t    *testing.T
	conn net.Conn
}

// listen starts a fake vpcd reader and connects a Card to it.
func listen(t *testing.T) (*fakeReader, *Card) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	card, err := Dial(ctx, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { card.Close() })
	conn := <-accepted
	if conn == nil {
		t.FailNow()
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	return &fakeReader{t: t, conn: conn}, card
}

func (f *fakeReader) send(b ...byte) {
	f.t.Helper()
	msg := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
	if _, err := f.conn.Write(append(msg, b...)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeReader) recv() []byte {
	f.t.Helper()
	var hdr [2]byte
	if _, err := io.ReadFull(f.conn, hdr[:]); err != nil {
		f.t.Fatal(err)
	}
	b := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(f.conn, b); err != nil {
		f.t.Fatal(err)
	}
	return b
}

// serve runs card.Serve in the background and returns its result channel.
func serve(ctx context.Context, card *Card, h func([]byte) []byte) <-chan error {
	done := make(chan error, 1)
	go func() { done <- card.Serve(ctx, h) }()
	return done
}

func waitErr(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

func TestServeSession(t *testing.T) {
	f, card := listen(t)
	var (
		mu       sync.Mutex
		controls []Control
	)
	card.OnControl = func(c Control) {
		mu.Lock()
		controls = append(controls, c)
		mu.Unlock()
	}
	var got [][]byte
	done := serve(context.Background(), card, func(apdu []byte) []byte {
		got = append(got, apdu)
		return append([]byte{byte(len(got))}, 0x90, 0x00)
	})

	f.send(byte(PowerOn))
	f.send(byte(GetATR))
	if atr := f.recv(); !bytes.Equal(atr, []byte{0x3B, 0x80, 0x80, 0x01, 0x01}) {
		t.Fatalf("ATR % X", atr)
	}
	selectAPDU := []byte{0x00, 0xA4, 0x04, 0x00, 0x02, 0xA0, 0x00, 0x00}
	f.send(selectAPDU...)
	if r := f.recv(); !bytes.Equal(r, []byte{1, 0x90, 0x00}) {
		t.Fatalf("response % X", r)
	}
	f.send(byte(Reset))
	f.send(0x80, 0xCA, 0x00, 0x00)
	if r := f.recv(); !bytes.Equal(r, []byte{2, 0x90, 0x00}) {
		t.Fatalf("response % X", r)
	}
	f.send(byte(PowerOff))
	f.conn.Close() // the reader goes away: the card is removed

	if err := waitErr(t, done); err != nil {
		t.Fatalf("Serve after the reader closed: %v", err)
	}
	if len(got) != 2 || !bytes.Equal(got[0], selectAPDU) || !bytes.Equal(got[1], []byte{0x80, 0xCA, 0x00, 0x00}) {
		t.Fatalf("handler saw % X", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []Control{PowerOn, Reset, PowerOff}; !slices.Equal(controls, want) {
		t.Fatalf("controls %v, want %v", controls, want)
	}
}

func TestCustomATR(t *testing.T) {
	f, card := listen(t)
	card.ATR = []byte{0x3B, 0x8A, 0x80, 0x01}
	serve(context.Background(), card, nil)
	f.send(byte(GetATR))
	if atr := f.recv(); !bytes.Equal(atr, card.ATR) {
		t.Fatalf("ATR % X", atr)
	}
}

func TestServeStopsOnContext(t *testing.T) {
	_, card := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := serve(ctx, card, nil)
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := waitErr(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve: %v", err)
	}
}

func TestCloseRemovesCard(t *testing.T) {
	f, card := listen(t)
	done := serve(context.Background(), card, nil)
	time.Sleep(50 * time.Millisecond)
	if err := card.Close(); err != nil {
		t.Fatal(err)
	}
	if err := card.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := waitErr(t, done); err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
	if _, err := f.conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("reader side after Close: %v", err)
	}
}

func TestProtocolErrors(t *testing.T) {
	for name, msg := range map[string][]byte{
		"empty message":   {},
		"unknown control": {0x03},
	} {
		t.Run(name, func(t *testing.T) {
			f, card := listen(t)
			done := serve(context.Background(), card, nil)
			f.send(msg...)
			if err := waitErr(t, done); !errors.Is(err, ErrProtocol) {
				t.Fatalf("Serve: %v", err)
			}
		})
	}
}

func TestTruncatedMessage(t *testing.T) {
	f, card := listen(t)
	done := serve(context.Background(), card, nil)
	f.conn.Write([]byte{0x00, 0x05, 0x00, 0xA4})
	f.conn.Close()
	if err := waitErr(t, done); err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Serve: %v", err)
	}
}

func TestAddr(t *testing.T) {
	if a := Addr(1); a != "127.0.0.1:35964" {
		t.Fatal(a)
	}
}
