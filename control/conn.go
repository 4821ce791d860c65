package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"time"
)

// internalMessage is all a client learns about a failure inside the daemon.
const internalMessage = "internal error (see the daemon's log)"

// serveConn checks the peer, then answers its requests one line at a time
// until it hangs up, goes idle, sends a line that is too long, or turns the
// connection into an event stream.
func (s *Server) serveConn(c *net.UnixConn) {
	defer s.finish(c)
	creds, err := peerCredentials(c)
	if err != nil {
		s.log.Error("control: refusing connection", "err", err)
		return
	}
	peer := creds.Peer
	log := s.log.With("peer_uid", peer.UID, "peer_pid", peer.PID)
	defer func() {
		if r := recover(); r != nil {
			log.Error("control: connection panicked", "err", fmt.Sprintf("%v\n%s", r, debug.Stack()))
		}
	}()
	if !s.cfg.allows(creds) {
		log.Warn("control: peer not allowed", "code", CodePermissionDenied)
		s.write(c, Response{Error: refusal(peer.UID)})
		return
	}

	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 0, min(4096, s.cfg.MaxLine+1)), s.cfg.MaxLine+1)
	for {
		c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		if !sc.Scan() {
			s.endOfInput(c, log, sc.Err())
			return
		}
		req, bad := parseRequest(sc.Bytes())
		var resp Response
		switch {
		case bad != nil:
			log.Debug("control: bad request", "code", bad.Code, "err", bad.Message)
			resp = Response{ID: req.ID, Error: bad}
		case req.Verb == VerbEvents:
			s.stream(c, log, req.ID)
			return
		default:
			resp = s.answer(log, peer, req)
		}
		if s.write(c, resp) != nil {
			return
		}
	}
}

// parseRequest decodes one request line.
func parseRequest(line []byte) (Request, *Error) {
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return Request{}, Errorf(CodeBadRequest, "malformed request: "+JSONProblem(err))
	}
	if req.Verb == "" {
		return req, Errorf(CodeBadRequest, "request has no verb")
	}
	return req, nil
}

// JSONProblem describes why JSON from a client (a request line, a verb's
// arguments) did not decode, without quoting any of it: encoding/json's
// errors quote the values they refuse, and a client's JSON may carry a
// password.
func JSONProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("not JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Sprintf("%q must be a %s", typ.Field, typ.Type)
	case errors.As(err, &typ):
		return "not a JSON object"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return "an unknown field"
	}
	return "not JSON"
}

// endOfInput logs why a connection stopped reading and answers a line that
// was too long.
func (s *Server) endOfInput(c *net.UnixConn, log *slog.Logger, err error) {
	switch {
	case err == nil || errors.Is(err, net.ErrClosed): // hung up, or Close
	case errors.Is(err, bufio.ErrTooLong):
		log.Warn("control: request line too long", "code", CodeTooLarge, "max_line", s.cfg.MaxLine)
		msg := fmt.Sprintf("request line longer than %d bytes", s.cfg.MaxLine)
		s.write(c, Response{Error: Errorf(CodeTooLarge, msg)})
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.Debug("control: idle connection closed")
	default:
		log.Debug("control: read failed", "err", err)
	}
}

// answer runs one request through the handler.
func (s *Server) answer(log *slog.Logger, peer Peer, req Request) Response {
	log = log.With("verb", req.Verb)
	result, err := s.call(peer, req)
	if err == nil {
		var raw json.RawMessage
		if result != nil {
			raw, err = json.Marshal(result)
		}
		if err == nil {
			return Response{ID: req.ID, OK: true, Result: raw}
		}
		err = fmt.Errorf("marshal result: %w", err)
	}
	if e, ok := errors.AsType[*Error](err); ok && e != nil {
		log.Debug("control: request failed", "code", e.Code, "err", e.Message)
		return Response{ID: req.ID, Error: e}
	}
	log.Error("control: request failed", "code", CodeInternal, "err", err)
	return Response{ID: req.ID, Error: Errorf(CodeInternal, internalMessage)}
}

// call runs the handler, turning a panic into an error.
func (s *Server) call(peer Peer, req Request) (result any, err error) {
	defer func() {
		if r := recover(); r != nil {
			result, err = nil, fmt.Errorf("handler panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return s.handler.Handle(s.ctx, peer, req.Verb, req.Args)
}

// write sends one response line within WriteTimeout.
func (s *Server) write(c *net.UnixConn, resp Response) error {
	line, err := json.Marshal(resp)
	if err != nil {
		s.log.Error("control: marshal response", "err", err)
		return err
	}
	c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_, err = c.Write(append(line, '\n'))
	return err
}
