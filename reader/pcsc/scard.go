//go:build pcsc

package pcsc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ebfe/scard"
)

// waitSlice bounds each SCardGetStatusChange. SCardCancel makes a wait end
// at once; the bound only matters when a cancel races with the start of a
// wait and is lost.
const waitSlice = 500 * time.Millisecond

// wrap turns an error of the scard binding into an *Error naming op.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var se scard.Error
	if errors.As(err, &se) {
		return &Error{Op: op, Code: uint32(se)}
	}
	return fmt.Errorf("pcsc: %s: %w", op, err)
}

// establish opens a PC/SC context of system scope.
func establish() (*scard.Context, error) {
	sc, err := scard.EstablishContext()
	return sc, wrap("SCardEstablishContext", err)
}

// listReaders lists the readers pcscd knows; none is not an error.
func listReaders(sc *scard.Context) ([]string, error) {
	names, err := sc.ListReaders()
	if err = wrap("SCardListReaders", err); hasCode(err, codeNoReaders) {
		return nil, nil
	}
	return names, err
}

// waitState blocks in SCardGetStatusChange until the state of the reader in
// rs[0] differs from rs[0].CurrentState, ctx ends, or done is closed (then
// it returns ErrClosed and leaves sc alone). An SCardCancel when ctx ends or
// when the closer closes done makes that prompt. It returns the new state and makes it
// rs[0].CurrentState for the next call. between, if not nil, runs before
// every wait of at most slice (to send ECP frames).
func waitState(ctx context.Context, done <-chan struct{}, sc *scard.Context, rs []scard.ReaderState, slice time.Duration, between func()) (scard.StateFlag, error) {
	stop := context.AfterFunc(ctx, func() { sc.Cancel() })
	defer stop()
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		select {
		case <-done:
			return 0, ErrClosed
		default:
		}
		if between != nil {
			between()
		}
		err := wrap("SCardGetStatusChange", sc.GetStatusChange(rs, slice))
		switch {
		case hasCode(err, codeTimeout), hasCode(err, codeCancelled):
			continue
		case err != nil:
			return 0, err
		}
		ev := rs[0].EventState &^ scard.StateChanged
		rs[0].CurrentState = ev
		return ev, nil
	}
}

// counter is pcsc-lite's count of card insertions and removals, kept in the
// upper half of a reader state.
func counter(s scard.StateFlag) uint32 { return uint32(s) >> 16 }

// sleep waits for d, or until ctx ends or done is closed.
func sleep(ctx context.Context, done <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-done:
	}
}
