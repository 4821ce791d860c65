package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// passwordMark in a seed is replaced by the fuzzed 8-digit password, so
// that the targets can check no error shows it.
const passwordMark = "PASSWORD"

func withPassword(b []byte, pw uint32) ([]byte, string) {
	p := fmt.Sprintf("%08d", pw%100000000)
	return bytes.Replace(b, []byte(passwordMark), []byte(p), 1), p
}

var requestSeeds = []string{
	`{"id":1,"verb":"status"}`,
	`{"id":2,"verb":"keys.show","args":{"key_id":"0123abcd"}}`,
	`{"id":3,"verb":"pairing.verifier","args":{"password":"PASSWORD"}}`,
	`{"id":4,"verb":"pairing.verifier","args":{"password":PASSWORD}}`,
	`{"id":5,"verb":"pairing.verifier","args":{"file":"{\"w0\":\"PASSWORD\"}"}}`,
	`{"id":6,"verb":"events"}`,
	`{"id":18446744073709551616,"verb":"status"}`,
	`{"id":1,"verb":""}`,
	`{"id":1,"verb":"status","args":[1,2,{"a":null}],"extra":true}`,
	`{"id":1,"verb":"sta`,
	`[]`, ``, `null`, `{"id":-1}`, "{\"verb\":\"\\u00e9\\ud800\"}",
}

// FuzzParseRequest checks the parsing of one request line: a request is
// accepted only with a verb, re-encodes to a request that parses the same,
// and a refusal is a bad_request whose response line is one line of JSON
// that never shows the password the line carried.
func FuzzParseRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s), uint32(12345678))
	}
	f.Fuzz(func(t *testing.T, line []byte, pw uint32) {
		line, p := withPassword(line, pw)
		req, bad := parseRequest(line)
		if bad != nil {
			if bad.Code != CodeBadRequest {
				t.Fatalf("%q: code %s", line, bad.Code)
			}
			if strings.Contains(bad.Message, p) {
				t.Fatalf("%q: the refusal shows the password: %s", line, bad.Message)
			}
			checkResponseLine(t, Response{ID: req.ID, Error: bad})
			return
		}
		if req.Verb == "" || !json.Valid(line) {
			t.Fatalf("%q accepted as %+v", line, req)
		}
		re, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("%+v does not encode: %v", req, err)
		}
		req2, bad := parseRequest(re)
		if bad != nil || req2.ID != req.ID || req2.Verb != req.Verb || !sameJSON(req2.Args, req.Args) {
			t.Fatalf("%q -> %s -> %+v, %v", line, re, req2, bad)
		}
	})
}

// sameJSON reports whether a and b are the same JSON value: encoding may
// escape differently ("&" as "\u0026") and space differently.
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	decode := func(m json.RawMessage) (any, error) {
		d := json.NewDecoder(bytes.NewReader(m))
		d.UseNumber()
		var v any
		return v, d.Decode(&v)
	}
	va, erra := decode(a)
	vb, errb := decode(b)
	return erra == nil && errb == nil && reflect.DeepEqual(va, vb)
}

// checkResponseLine checks that a response is one line of JSON that reads
// back the same.
func checkResponseLine(t *testing.T, resp Response) {
	t.Helper()
	b, err := json.Marshal(resp)
	if err != nil || bytes.ContainsAny(b, "\r\n") {
		t.Fatalf("response %+v: %q, %v", resp, b, err)
	}
	var back Response
	if err := json.Unmarshal(b, &back); err != nil || back.ID != resp.ID || (back.Error == nil) != (resp.Error == nil) ||
		(back.Error != nil && *back.Error != *resp.Error && strings.ToValidUTF8(resp.Error.Message, "\uFFFD") != back.Error.Message) {
		t.Fatalf("response %s reads back as %+v, %v", b, back, err)
	}
}

// lineHandler answers every verb with its arguments, and opens event
// streams that end at once.
type lineHandler struct{}

func (lineHandler) Handle(_ context.Context, _ Peer, verb string, args json.RawMessage) (any, error) {
	if verb == "fail" {
		return nil, Errorf(CodeUnknownKey, "no such thing")
	}
	return map[string]any{"verb": verb, "args": args}, nil
}

func (lineHandler) Subscribe() Subscription {
	s := newFakeSub(0)
	close(s.ch)
	return s
}

const fuzzMaxLine = 200

// FuzzServeLines sends arbitrary bytes to a live server and checks the
// framing against a model of it: one response per line (a line longer than
// MaxLine gets too_large and ends the connection, an events request ends it
// when its stream ends), in order, each with its request's id, each a
// single line of JSON.
func FuzzServeLines(f *testing.F) {
	path := filepath.Join(f.TempDir(), "control.sock")
	srv, err := Listen(ServerConfig{
		Path: path, AllowedUIDs: []uint32{uint32(os.Getuid())}, MaxLine: fuzzMaxLine,
		Logger: slog.New(slog.DiscardHandler),
	}, lineHandler{})
	if err != nil {
		f.Fatal(err)
	}
	go srv.Serve(context.Background())
	f.Cleanup(func() { srv.Close() })

	f.Add([]byte(strings.Join(requestSeeds, "\n")+"\n"), uint32(0))
	f.Add([]byte("{\"id\":1,\"verb\":\"status\"}\r\n\n{\"id\":2,\"verb\":\"fail\"}"), uint32(1))
	f.Add([]byte("{\"id\":1,\"verb\":\"status\"}\n"+strings.Repeat("x", fuzzMaxLine+1)+"\n{\"id\":2,\"verb\":\"status\"}\n"), uint32(2))
	f.Add([]byte("{\"id\":7,\"verb\":\"events\"}\n{\"id\":8,\"verb\":\"status\"}\n"), uint32(3))
	f.Fuzz(func(t *testing.T, in []byte, pw uint32) {
		in, p := withPassword(in, pw)
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		go func() {
			c.Write(in)
			c.(*net.UnixConn).CloseWrite()
		}()
		out, err := io.ReadAll(c)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("reading the responses: %v", err)
		}

		// The model: the lines the server reads and what each gets.
		type want struct {
			id      uint64
			code    string
			verbose bool // an answer (not a refusal) to check for the verb
		}
		var wants []want
		lines := bytes.Split(in, []byte("\n"))
		if len(lines[len(lines)-1]) == 0 {
			lines = lines[:len(lines)-1]
		}
		for _, l := range lines {
			// The scanner needs the whole line, \r included, and its
			// newline or the end of input within MaxLine+1 bytes.
			if len(l) > fuzzMaxLine {
				wants = append(wants, want{code: CodeTooLarge})
				break
			}
			req, bad := parseRequest(bytes.TrimSuffix(l, []byte("\r")))
			if bad == nil && req.Verb == VerbEvents {
				break
			}
			switch {
			case bad != nil:
				wants = append(wants, want{id: req.ID, code: bad.Code})
			case req.Verb == "fail":
				wants = append(wants, want{id: req.ID, code: CodeUnknownKey})
			default:
				wants = append(wants, want{id: req.ID, verbose: true})
			}
		}

		got := bytes.Split(out, []byte("\n"))
		if len(got[len(got)-1]) != 0 {
			t.Fatalf("response stream %q does not end with a newline", out)
		}
		got = got[:len(got)-1]
		if len(got) != len(wants) {
			t.Fatalf("%d responses to %d lines:\nin  %q\nout %q", len(got), len(wants), in, out)
		}
		for i, g := range got {
			var resp Response
			if err := json.Unmarshal(g, &resp); err != nil {
				t.Fatalf("response %d %q: %v", i, g, err)
			}
			w := wants[i]
			code := ""
			if resp.Error != nil {
				code = resp.Error.Code
				if strings.Contains(resp.Error.Message, p) {
					t.Fatalf("response %d shows the password: %s", i, g)
				}
			}
			if resp.ID != w.id || code != w.code || resp.OK != (code == "") || (w.verbose && len(resp.Result) == 0) {
				t.Fatalf("response %d %s, want id %d code %q", i, g, w.id, w.code)
			}
		}
	})
}

// FuzzClientReceive has the client read arbitrary bytes as the daemon's
// answer, first to a call, then as an event stream, and checks them against
// a decoding of the same bytes: a call succeeds only on a response with its
// id and no error, returns the daemon's error as an *Error, and an event
// stream delivers exactly the events that precede anything else. The
// client never hangs or panics on what the daemon sends.
func FuzzClientReceive(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"ok":true,"result":{"version":"x","uptime":1.5}}`,
		`{"id":1,"ok":false,"error":{"code":"unknown_key","message":"no key 0123abcd"}}`,
		`{"id":0,"ok":false,"error":{"code":"busy","message":"too many connections"}}`,
		`{"id":2,"ok":true}`,
		`{"id":1,"ok":true,"result":{"uptime":"soon"}}`,
		`{"id":1,"ok":true,"event":{"seq":1,"type":"tap","total":1234.5,"phases":[{"name":"select","time":12}]},"dropped":3}` + "\n" +
			`{"id":1,"ok":true,"event":{"seq":2,"type":"key","by":1000}}` + "\n" + `{"id":1,"ok":true}`,
		`{"id":1,"ok":true,"result":null}{"id":1}`,
		`{"id":1,"ok":true,"result":1e999}`,
		"{\"id\":1,\"ok\":true,\"result\":{\"version\":\"\\ud800\"}}",
		`{"id":1,"ok":true,"result":{"version":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		// What the daemon's bytes say: the responses before the first
		// thing that is not one.
		var resps []Response
		dec := json.NewDecoder(bytes.NewReader(in))
		for {
			var r Response
			if dec.Decode(&r) != nil {
				break
			}
			resps = append(resps, r)
		}

		c, peer := clientPair(t)
		go func(peer *net.UnixConn) {
			peer.Write(in)
			peer.CloseWrite()
			io.Copy(io.Discard, peer)
		}(peer)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var status Status
		err := c.Call(ctx, VerbStatus, nil, &status)
		var first *Response
		if len(resps) > 0 {
			first = &resps[0]
		}
		de, isDaemonErr := errors.AsType[*Error](err)
		switch {
		case first == nil:
			if err == nil || isDaemonErr {
				t.Fatalf("call on %q: %v", in, err)
			}
		case first.ID == 1 && first.Error != nil, first.ID == 0 && first.Error != nil:
			if !isDaemonErr || *de != *first.Error {
				t.Fatalf("call on %q: %v, want %v", in, err, first.Error)
			}
		case first.ID != 1:
			if err == nil || isDaemonErr {
				t.Fatalf("call on %q: %v for response id %d", in, err, first.ID)
			}
		default:
			var want Status
			werr := error(nil)
			if len(first.Result) > 0 {
				werr = json.Unmarshal(first.Result, &want)
			}
			if (err == nil) != (werr == nil) || (err == nil && !sameStatus(status, want)) {
				t.Fatalf("call on %q: %+v, %v; want %+v, %v", in, status, err, want, werr)
			}
		}

		// The same bytes as an event stream.
		c, peer = clientPair(t)
		go func(peer *net.UnixConn) {
			peer.Write(in)
			peer.CloseWrite()
			io.Copy(io.Discard, peer)
		}(peer)
		var got []Event
		var dropped []uint64
		err = c.Events(ctx, func(ev Event, n uint64) error {
			got, dropped = append(got, ev), append(dropped, n)
			return nil
		})
		n := 0
		for n < len(resps) && resps[n].ID == 1 && resps[n].Error == nil && resps[n].Event != nil {
			n++
		}
		if len(got) != n {
			t.Fatalf("events from %q: %d, want %d (%v)", in, len(got), n, err)
		}
		for i := range got {
			if got[i].Seq != resps[i].Event.Seq || got[i].Type != resps[i].Event.Type || dropped[i] != resps[i].Dropped {
				t.Fatalf("event %d from %q: %+v", i, in, got[i])
			}
		}
		if err == nil {
			t.Fatalf("event stream on %q ended without an error", in)
		}
		if n < len(resps) && (resps[n].ID == 1 || resps[n].ID == 0) && resps[n].Error != nil {
			if e, ok := errors.AsType[*Error](err); !ok || *e != *resps[n].Error {
				t.Fatalf("event stream on %q: %v, want %v", in, err, resps[n].Error)
			}
		}
	})
}

func sameStatus(a, b Status) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// clientPair returns a Client on one end of a socket pair and the other end.
func clientPair(t *testing.T) (*Client, *net.UnixConn) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]*net.UnixConn, 2)
	for i, fd := range fds {
		file := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(file)
		file.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.(*net.UnixConn)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { conns[0].Close(); conns[1].Close() }) })
	return &Client{conn: conns[0], dec: json.NewDecoder(conns[0])}, conns[1]
}

// FuzzDurationJSON checks Duration's JSON form: any number reads without
// panicking, to the nearest nanosecond; and a duration survives writing
// and reading back, to the nanosecond up to 2^50 ns (13 days; phases and
// taps are far shorter) and within the float64 microseconds' precision
// (a few ns) up to 2^53 ns.
func FuzzDurationJSON(f *testing.F) {
	for _, s := range []string{"0", "1.5", "-3", "0.001", "0.003", "1234567.891", "1e300", "-1e300", "9223372036854775.807", `"1s"`, "null"} {
		f.Add([]byte(s), int64(0))
	}
	f.Add([]byte("0"), int64(3))
	f.Add([]byte("0"), int64(1<<53))
	f.Add([]byte("0"), int64(-7))
	f.Fuzz(func(t *testing.T, b []byte, ns int64) {
		var d Duration
		if err := d.UnmarshalJSON(b); err == nil {
			var us float64
			if json.Unmarshal(b, &us) != nil {
				t.Fatalf("%q read as a duration but not as a number", b)
			}
			if math.Abs(us*1e3) <= 1<<53 && math.Abs(float64(d)-us*1e3) > 0.5 {
				t.Fatalf("%q read as %d ns", b, int64(d))
			}
		}
		if ns > 1<<53 || ns < -(1<<53) {
			return
		}
		in := Duration(ns)
		enc, err := json.Marshal(in)
		if err != nil {
			t.Fatalf("%d ns: %v", ns, err)
		}
		var out Duration
		err = json.Unmarshal(enc, &out)
		tolerance := int64(0)
		if ns > 1<<50 || ns < -(1<<50) {
			tolerance = 4
		}
		if diff := int64(out) - ns; err != nil || diff > tolerance || diff < -tolerance {
			t.Fatalf("%d ns -> %s -> %d ns, %v", ns, enc, int64(out), err)
		}
	})
}
