package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// Defaults applied by Listen to zero fields of ServerConfig.
const (
	DefaultMode         os.FileMode = 0o660
	DefaultMaxLine                  = 64 << 10
	DefaultMaxConns                 = 128
	DefaultIdleTimeout              = 60 * time.Second
	DefaultWriteTimeout             = 5 * time.Second
)

// ServerConfig configures a Server. Zero fields take the defaults above,
// except UID and GID: 0 is root, so set them to -1 to leave the socket
// file's owner or group as created.
type ServerConfig struct {
	Path string      // socket path
	Mode os.FileMode // permissions of the socket file (default 0660)
	UID  int         // owner of the socket file; -1 leaves it
	GID  int         // group of the socket file; -1 leaves it
	// AllowedUIDs and AllowedGIDs admit peers besides root: a peer is
	// allowed if its uid is listed or its primary or a supplementary gid is.
	AllowedUIDs []uint32
	AllowedGIDs []uint32
	MaxLine     int           // longest request line in bytes (default 64 KiB)
	MaxConns    int           // connections served at once (default 128)
	IdleTimeout time.Duration // request/response connections idle longer are closed (default 60 s)
	// WriteTimeout bounds every write to a client (default 5 s); an event
	// subscriber that does not read for that long is disconnected.
	WriteTimeout time.Duration
	Logger       *slog.Logger // default slog.Default()
}

// Server serves a Handler on a Unix socket.
type Server struct {
	cfg     ServerConfig
	handler Handler
	log     *slog.Logger
	ln      *net.UnixListener

	ctx    context.Context // handlers' context, canceled by Close
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[*net.UnixConn]struct{} // connections being served
	closed bool
	wg     sync.WaitGroup // connection goroutines
	// Connections refused over MaxConns and not logged yet, when the last
	// line about them was logged, and whether a line is due (countBusy).
	busyUnlogged int
	busyLogged   time.Time
	busyDue      bool

	closeOnce sync.Once
}

// busyLogEvery is the least time between two log lines about connections
// refused over MaxConns: a client retrying in a loop must not flood the log
// (and make journald's rate limit drop the daemon's other lines).
const busyLogEvery = time.Second

// Listen creates the socket at cfg.Path, replacing a stale socket file left
// by a daemon that is gone, and sets the file's mode and ownership. It fails
// if another daemon is listening on the path. Call Serve to accept clients.
func Listen(cfg ServerConfig, handler Handler) (*Server, error) {
	if cfg.Path == "" {
		return nil, errors.New("control: no socket path")
	}
	if handler == nil {
		return nil, errors.New("control: no handler")
	}
	cfg = withDefaults(cfg)
	if err := removeStaleSocket(cfg.Path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.Path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control: listen on %s: %w", cfg.Path, err)
	}
	if err := setPermissions(cfg); err != nil {
		ln.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:     cfg,
		handler: handler,
		log:     cfg.Logger,
		ln:      ln,
		ctx:     ctx,
		cancel:  cancel,
		conns:   make(map[*net.UnixConn]struct{}),
	}, nil
}

func withDefaults(cfg ServerConfig) ServerConfig {
	if cfg.Mode == 0 {
		cfg.Mode = DefaultMode
	}
	if cfg.MaxLine <= 0 {
		cfg.MaxLine = DefaultMaxLine
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// Serve accepts clients until ctx is canceled or Close is called, serving
// each connection in its own goroutine. It returns nil once the server is
// closed; canceling ctx closes the server.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	var backoff time.Duration
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does, rather than stop serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("control: accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.start(c)
	}
}

// start registers c and serves it, or turns it away when the server is
// closed or full.
func (s *Server) start(c *net.UnixConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return
	}
	s.wg.Add(1)
	if len(s.conns) >= s.cfg.MaxConns {
		go s.refuseBusy(c, s.countBusy())
		return
	}
	s.conns[c] = struct{}{}
	go s.serveConn(c)
}

// countBusy counts a connection refused over MaxConns. Refusals are logged
// at most once every busyLogEvery, with their number: countBusy returns the
// number to log now (the first refusal of a burst is logged at once), or 0
// when they are left to the line due when busyLogEvery is over. Called with
// mu held.
func (s *Server) countBusy() int {
	s.busyUnlogged++
	if s.busyDue {
		return 0
	}
	wait := busyLogEvery - time.Since(s.busyLogged)
	if wait <= 0 {
		n := s.busyUnlogged
		s.busyUnlogged, s.busyLogged = 0, time.Now()
		return n
	}
	s.busyDue = true
	time.AfterFunc(wait, func() {
		s.mu.Lock()
		n := s.busyUnlogged
		s.busyUnlogged, s.busyLogged, s.busyDue = 0, time.Now(), false
		s.mu.Unlock()
		s.logBusy(n)
	})
	return 0
}

func (s *Server) logBusy(refused int) {
	s.log.Warn("control: too many connections", "code", CodeBusy, "max_conns", s.cfg.MaxConns, "refused", refused)
}

// refuseBusy answers a connection over MaxConns with CodeBusy and closes it,
// logging refused connections first when refused > 0 (see countBusy).
func (s *Server) refuseBusy(c *net.UnixConn, refused int) {
	defer s.wg.Done()
	defer c.Close()
	if refused > 0 {
		s.logBusy(refused)
	}
	msg := fmt.Sprintf("too many connections to dkvehicled (limit %d); try again", s.cfg.MaxConns)
	s.write(c, Response{Error: Errorf(CodeBusy, msg)})
}

// finish forgets c once its goroutine is done with it.
func (s *Server) finish(c *net.UnixConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
	s.wg.Done()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops accepting, cancels the handlers' context, closes every
// connection and waits for their goroutines. It removes the socket file and
// may be called more than once.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		err = s.ln.Close()
		s.cancel()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("control: close listener: %w", err)
	}
	return nil
}
