//go:build linux && !arm

package fs

import "syscall"

const syncFileRangeWrite = 0x2 // SYNC_FILE_RANGE_WRITE, absent from package syscall

// startWriteback asks the kernel to start writing [off, off+n) of f to disk
// now, without waiting, so the fsync ending the Append finds little left to
// do (pebble's bytes_per_sync). Best effort: the fsync is what counts.
func startWriteback(f File, off, n int64) {
	sc, ok := f.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) { _ = syscall.SyncFileRange(int(fd), off, n, syncFileRangeWrite) })
}
