//go:build !linux

package control

import (
	"errors"
	"net"
)

// peerCredentials needs SO_PEERCRED: off Linux every peer is refused.
func peerCredentials(*net.UnixConn) (peerCreds, error) {
	return peerCreds{}, errors.New("peer credentials: only supported on Linux")
}
