package main

import (
	"os"
	"syscall"
)

// evictBinary writes out and drops path's pages from the page cache, so a
// server starts from a binary read back from disk, as a deployed one is.
// On Linux 6.18 the pages go build has just written sit in large folios,
// and a touch then maps up to 256 KiB of the binary instead of 64 KiB:
// the same binary showed 50.0-51.5 MiB idle fresh from go build against
// 44.8-45.2 MiB read back, so a peak RSS row measured the page cache's
// history, not the server (README, Memory).
func evictBinary(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil { // dirty pages are not dropped
		return err
	}
	const dontNeed = 4 // POSIX_FADV_DONTNEED
	_, _, errno := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, dontNeed, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
