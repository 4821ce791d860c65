package control

import (
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peerCredentials reads the client's pid, uid and gid (SO_PEERCRED) and its
// supplementary groups (SO_PEERGROUPS, Linux 4.13 and later; on older
// kernels only the primary gid counts).
func peerCredentials(c *net.UnixConn) (peerCreds, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return peerCreds{}, fmt.Errorf("peer credentials: %w", err)
	}
	var p peerCreds
	var credErr error
	err = raw.Control(func(fd uintptr) {
		var u *unix.Ucred
		u, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if credErr != nil {
			return
		}
		p.Peer = Peer{PID: uint32(u.Pid), UID: u.Uid, GID: u.Gid}
		p.groups = peerGroups(fd)
	})
	if err == nil {
		err = credErr
	}
	if err != nil {
		return peerCreds{}, fmt.Errorf("peer credentials: %w", err)
	}
	return p, nil
}

// peerGroups returns the supplementary groups the peer had when it
// connected, or nil if the kernel cannot tell.
func peerGroups(fd uintptr) []uint32 {
	groups := make([]uint32, 32)
	for {
		size := uint32(len(groups) * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&groups[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch {
		case errno == 0:
			return groups[:size/4]
		case errno == unix.ERANGE && int(size/4) > len(groups):
			groups = make([]uint32, size/4)
		default:
			return nil
		}
	}
}
