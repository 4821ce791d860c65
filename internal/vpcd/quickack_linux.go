package vpcd

import (
	"net"
	"syscall"
)

// quickAck asks the kernel to acknowledge the next segment at once instead of
// delaying the ACK. It is best effort: a failure only costs latency.
func quickAck(c *net.TCPConn) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
