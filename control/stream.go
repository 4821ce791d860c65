package control

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"time"
)

// stream serves the "events" verb: one response line per event, with the
// number of events lost since the previous line, until the client hangs up,
// the subscription ends, a write times out or the server closes.
func (s *Server) stream(c *net.UnixConn, log *slog.Logger, id uint64) {
	log = log.With("verb", VerbEvents)
	sub := s.handler.Subscribe()
	defer sub.Stop()
	log.Debug("control: event stream opened")

	// Nothing more is read from a stream; reading on only tells us when the
	// client hangs up.
	gone := make(chan struct{})
	c.SetReadDeadline(time.Time{})
	go func() {
		io.Copy(io.Discard, c)
		close(gone)
	}()

	var reported uint64
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				log.Debug("control: event stream ended by the daemon")
				return
			}
			dropped := sub.Dropped()
			resp := Response{ID: id, OK: true, Event: &ev, Dropped: dropped - reported}
			reported = dropped
			if err := s.write(c, resp); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					log.Warn("control: event subscriber dropped: it stopped reading",
						"err", err, "write_timeout", s.cfg.WriteTimeout)
				}
				return
			}
		case <-gone:
			log.Debug("control: event subscriber hung up")
			return
		case <-s.ctx.Done():
			return
		}
	}
}
