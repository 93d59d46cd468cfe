//go:build !linux

package s3

import "net"

// setRcvLowat does nothing: only Linux splices, and its poller is the one
// the mark spares (lowat_linux.go).
func setRcvLowat(*net.TCPConn, int) {}
