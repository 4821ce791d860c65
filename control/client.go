package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// Errors of Dial and of a connection, for errors.Is.
var (
	// ErrNotRunning: no daemon listens on the socket.
	ErrNotRunning = errors.New("dkvehicled is not running")
	// ErrNotAllowed: the file system refused access to the socket. (A
	// daemon that refuses a peer answers an *Error with
	// CodePermissionDenied instead.)
	ErrNotAllowed = errors.New("your user is not allowed to use dkvehicled")
	// ErrClosed: the daemon closed the connection.
	ErrClosed = errors.New("dkvehicled closed the connection")
)

// Client is a connection to dkvehicled's control socket. Calls on one
// Client are sequential: it is not safe for concurrent use.
type Client struct {
	conn   *net.UnixConn
	dec    *json.Decoder
	lastID uint64
	err    error // why the client can no longer be used
}

// Dial connects to the daemon's socket at path.
func Dial(path string) (*Client, error) {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	switch {
	case err == nil:
		return &Client{conn: conn, dec: json.NewDecoder(conn)}, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("%w (no socket at %s)", ErrNotRunning, path)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("permission denied on %s: %w (see the socket's group)", path, ErrNotAllowed)
	default:
		return nil, fmt.Errorf("connecting to dkvehicled at %s: %w", path, err)
	}
}

// Call sends one request and decodes its result into result (a pointer, or
// nil to ignore it). A failed request returns the daemon's *Error, which
// errors.As finds. Canceling ctx, or its deadline passing, abandons the call
// and closes the connection.
func (c *Client) Call(ctx context.Context, verb string, args, result any) error {
	req, err := c.request(ctx, verb, args)
	if err != nil {
		return err
	}
	defer c.watch(ctx)()
	werr := c.send(req)
	resp, err := c.receive(ctx, req.ID, werr)
	if err != nil {
		return err
	}
	if resp.Error != nil {
		return resp.Error
	}
	if result != nil && len(resp.Result) > 0 {
		if err := json.Unmarshal(resp.Result, result); err != nil {
			return fmt.Errorf("control: %s result: %w", verb, err)
		}
	}
	return nil
}

// Events opens the event stream and calls fn for each event in order, with
// the number of events the daemon dropped before it because this client
// read too slowly. It returns an error wrapping ctx.Err() when ctx ends,
// fn's error if fn fails, the daemon's *Error if it refuses the stream, and
// ErrClosed when the daemon ends the stream. The client cannot make calls
// afterwards.
func (c *Client) Events(ctx context.Context, fn func(ev Event, dropped uint64) error) error {
	req, err := c.request(ctx, VerbEvents, nil)
	if err != nil {
		return err
	}
	defer c.shut(errors.New("control: the connection was used for an event stream"))
	defer c.watch(ctx)()
	werr := c.send(req)
	for {
		resp, err := c.receive(ctx, req.ID, werr)
		if err != nil {
			return err
		}
		if resp.Error != nil {
			return resp.Error
		}
		if resp.Event == nil {
			return errors.New("control: event stream: a line without an event")
		}
		if err := fn(*resp.Event, resp.Dropped); err != nil {
			return err
		}
	}
}

// Close closes the connection.
func (c *Client) Close() error {
	return c.shut(errors.New("control: client closed"))
}

// request numbers a new request after checking the client and ctx.
func (c *Client) request(ctx context.Context, verb string, args any) (Request, error) {
	if c.err != nil {
		return Request{}, c.err
	}
	if err := ctx.Err(); err != nil {
		return Request{}, fmt.Errorf("control: %s: %w", verb, err)
	}
	c.lastID++
	req := Request{ID: c.lastID, Verb: verb}
	if args != nil {
		raw, err := json.Marshal(args)
		if err != nil {
			return Request{}, fmt.Errorf("control: %s arguments: %w", verb, err)
		}
		req.Args = raw
	}
	return req, nil
}

// watch applies ctx's deadline to the connection and interrupts its I/O
// when ctx is canceled. The returned function ends the watch; if ctx ended
// meanwhile, the connection is closed, since a late answer may be on its way.
func (c *Client) watch(ctx context.Context) (done func()) {
	deadline, _ := ctx.Deadline()
	c.conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	return func() {
		if !stop() {
			c.shut(fmt.Errorf("control: connection abandoned: %w", ctx.Err()))
		}
	}
}

// send writes one request line.
func (c *Client) send(req Request) error {
	line, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("control: %s: %w", req.Verb, err)
	}
	_, err = c.conn.Write(append(line, '\n'))
	return err
}

// receive reads the next response line for request id. A line with ID 0
// and an error is the daemon speaking about the connection itself (peer
// refused, too busy, line too long): it is the answer, even when sending
// failed because the daemon had already hung up, and the connection is
// done.
func (c *Client) receive(ctx context.Context, id uint64, sendErr error) (Response, error) {
	var resp Response
	err := c.dec.Decode(&resp)
	switch {
	case err == nil && resp.ID == id:
		return resp, nil
	case err == nil && resp.ID == 0 && resp.Error != nil:
		c.shut(fmt.Errorf("%w: %w", ErrClosed, resp.Error))
		return resp, nil
	case err == nil:
		err = fmt.Errorf("control: response for request %d, want %d", resp.ID, id)
	case ctx.Err() != nil:
		err = fmt.Errorf("control: %w", ctx.Err())
	case errors.Is(err, os.ErrDeadlineExceeded): // the deadline is ctx's
		err = fmt.Errorf("control: %w", context.DeadlineExceeded)
	case sendErr != nil:
		err = fmt.Errorf("control: sending request: %w", sendErr)
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		err = ErrClosed
	default:
		err = fmt.Errorf("control: reading response: %w", err)
	}
	c.shut(err)
	return Response{}, err
}

// shut closes the connection once, remembering why.
func (c *Client) shut(why error) error {
	if c.err != nil {
		return nil
	}
	c.err = why
	return c.conn.Close()
}
