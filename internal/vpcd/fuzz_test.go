package vpcd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// vpcdModel is what a card must do with a byte stream from the reader,
// following the protocol in the package documentation.
type vpcdModel struct {
	apdus    [][]byte
	controls []Control
	replies  [][]byte
	clean    bool // the stream ends between messages: Serve returns nil
	protocol bool // an empty message or an unknown control: ErrProtocol
}

func modelStream(b []byte, reply func([]byte) []byte) vpcdModel {
	var m vpcdModel
	for {
		if len(b) == 0 {
			m.clean = true
			return m
		}
		if len(b) < 2 {
			return m
		}
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if n > len(b) {
			return m
		}
		msg := b[:n]
		b = b[n:]
		switch {
		case n == 0:
			m.protocol = true
			return m
		case n == 1 && Control(msg[0]) == GetATR:
			m.replies = append(m.replies, defaultATR)
		case n == 1 && (Control(msg[0]) == PowerOff || Control(msg[0]) == PowerOn || Control(msg[0]) == Reset):
			m.controls = append(m.controls, Control(msg[0]))
		case n == 1:
			m.protocol = true
			return m
		default:
			m.apdus = append(m.apdus, msg)
			m.replies = append(m.replies, reply(msg))
		}
	}
}

func fuzzReply(apdu []byte) []byte {
	return append(slices.Clone(apdu[:min(len(apdu), 6)]), 0x90, 0x00)
}

// FuzzServe plays the vpcd driver's side of a connection with an
// arbitrary byte stream and checks the card against a model of the
// protocol: the handler gets exactly the command APDUs, OnControl exactly
// the power and reset codes, the reader exactly one framed reply per APDU
// and per ATR request, in order; Serve returns nil when the stream ends
// between messages, ErrProtocol for an empty message or an unknown control,
// and a read error for a truncated one.
func FuzzServe(f *testing.F) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	frame := func(msgs ...[]byte) []byte {
		var b []byte
		for _, m := range msgs {
			b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
			b = append(b, m...)
		}
		return b
	}
	sel := []byte{0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x08, 0x09, 0x43, 0x43, 0x00}
	f.Add(frame([]byte{0x01}, []byte{0x04}, sel, []byte{0x80, 0x3C, 0x01, 0x00}, []byte{0x00}))
	f.Add(frame([]byte{0x04}, []byte{0x02}, sel))
	f.Add(frame([]byte{}))
	f.Add(frame([]byte{0x03}))
	f.Add([]byte{0x00, 0x05, 0x00, 0xA4})
	f.Add([]byte{0x00})
	f.Add(frame(bytes.Repeat([]byte{0xEE}, 300)))
	f.Fuzz(func(t *testing.T, stream []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			accepted <- c
		}()
		card, err := Dial(ctx, ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer card.Close()
		rd := <-accepted
		if rd == nil {
			t.Fatal("no connection")
		}
		defer rd.Close()
		rd.SetDeadline(time.Now().Add(20 * time.Second))

		var apdus [][]byte
		var controls []Control
		card.OnControl = func(c Control) { controls = append(controls, c) }
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(rd)
			got <- b
		}()
		go func() {
			rd.Write(stream)
			rd.(*net.TCPConn).CloseWrite()
		}()
		serr := card.Serve(ctx, func(apdu []byte) []byte {
			apdus = append(apdus, apdu)
			return fuzzReply(apdu)
		})
		// End the card's side without a reset, so that no reply is lost:
		// close for writing, read what the reader still sends, close.
		card.conn.CloseWrite()
		io.Copy(io.Discard, card.conn)
		card.Close()
		out := <-got

		m := modelStream(stream, fuzzReply)
		switch {
		case m.clean:
			if serr != nil {
				t.Fatalf("stream %X ends between messages: Serve: %v", stream, serr)
			}
		case m.protocol:
			if !errors.Is(serr, ErrProtocol) {
				t.Fatalf("stream %X breaks the protocol: Serve: %v", stream, serr)
			}
		default:
			if serr == nil || errors.Is(serr, ErrProtocol) ||
				!(errors.Is(serr, io.ErrUnexpectedEOF) || errors.Is(serr, io.EOF)) {
				t.Fatalf("stream %X ends inside a message: Serve: %v", stream, serr)
			}
		}
		if !slices.EqualFunc(apdus, m.apdus, bytes.Equal) || !slices.Equal(controls, m.controls) {
			t.Fatalf("stream %X: APDUs %X, controls %v; want %X, %v", stream, apdus, controls, m.apdus, m.controls)
		}
		var want []byte
		for _, r := range m.replies {
			want = binary.BigEndian.AppendUint16(want, uint16(len(r)))
			want = append(want, r...)
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("stream %X: replies %X, want %X", stream, out, want)
		}
	})
}
