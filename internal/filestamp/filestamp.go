// Package filestamp tells when a file the server re-reads on change (the
// htpasswd file, trusted roots) must be read again: when its size or
// modification time moved, and also while its last read came so soon
// after that time that a rewrite within the same timestamp tick would
// move neither (git calls such an index entry "racily clean"). A caller
// that reads again in that window compares the content's digest with
// what it has before it drops anything.
package filestamp

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// RacyWindow is how long after its modification time a file may still
// change without the time moving: the kernel stamps from a coarse clock
// (a few ms on Linux), some filesystems keep seconds (2 s on FAT).
const RacyWindow = 2 * time.Second

// Stamp is what a file looked like when its content was last read. The
// zero Stamp was never read.
type Stamp struct {
	read bool
	racy bool
	size int64
	mod  time.Time
}

// Current reports whether the file, stat'ed as fi, surely holds the
// content last read: no need to read it again.
func (s *Stamp) Current(fi fs.FileInfo) bool {
	return s.read && !s.racy && fi.Size() == s.size && fi.ModTime().Equal(s.mod)
}

// Read records fi, stat'ed before the content was read at now. A
// modification time in the future (clock skew) is racy too.
func (s *Stamp) Read(fi fs.FileInfo, now time.Time) {
	s.read, s.size, s.mod = true, fi.Size(), fi.ModTime()
	s.racy = now.Sub(s.mod) < RacyWindow
}

// ReadMax reads the file at path, an error if it holds more than max
// bytes (never more than max+1 are read).
func ReadMax(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: more than %d bytes", path, max)
	}
	return b, nil
}
