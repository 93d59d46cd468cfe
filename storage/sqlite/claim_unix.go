//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Claim makes this process the only server of the database at path, until
// release: it holds an exclusive flock(2) on path+".lock", which the kernel
// drops when the process ends, however it ends. A second server on the same
// file would answer pulls from a cache its own writes alone invalidate
// (Options.BodyCache), and two of them are no replicas: those need
// PostgreSQL. The lock file names the holder's pid for the error.
func Claim(path string) (release func(), err error) {
	lp := path + ".lock"
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "another process"
			if b, rerr := os.ReadFile(lp); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
					holder = fmt.Sprintf("process %d", pid)
				}
			}
			return nil, fmt.Errorf("sqlite: %s is in use by %s: one server per SQLite database (several replicas need PostgreSQL)", path, holder)
		}
		return nil, fmt.Errorf("sqlite: claim %s: %w", path, err)
	}
	// The pid is only for the message above: failing to write it loses nothing.
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
