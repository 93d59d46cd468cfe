package s3

import (
	"net"
	"syscall"
)

// setRcvLowat sets c's SO_RCVLOWAT: poll reports it readable once n
// bytes are queued (or at EOF, an error, or a receive window too small
// to reach n: the kernel never waits forever). Reads that find bytes
// still return them at once. A failure only costs wakeups: ignored.
func setRcvLowat(c *net.TCPConn, n int) {
	sc, err := c.SyscallConn()
	if err != nil {
		return
	}
	sc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
	})
}
