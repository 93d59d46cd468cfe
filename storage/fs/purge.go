package fs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"path/filepath"
	"time"

	"github.com/packreg/packreg/storage"
)

var _ storage.UploadPurger = (*Store)(nil)

// PurgeUploads is storage.UploadPurger: the files of uploads/ and tmp/
// last written before cutoff. A crash leaves them there: a single-request
// upload's staging file in tmp/ (Put), a session's data file whose record
// is gone. Nothing ever reads such a file again, and a live session's
// data is rewritten whenever it grows, so the caller's cutoff keeps it.
func (s *Store) PurgeUploads(ctx context.Context, cutoff time.Time) (n int, err error) {
	defer s.observe("purge", time.Now(), &err)
	rd, ok := s.fs.(dirReader)
	if !ok {
		return 0, fmt.Errorf("fs: purging uploads: %w", errors.ErrUnsupported)
	}
	for _, dir := range []string{s.uploads, s.tmp} {
		ents, err := rd.ReadDir(dir)
		if err != nil {
			return n, fmt.Errorf("fs: purging uploads: %w", err)
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			if !e.Type().IsRegular() {
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, iofs.ErrNotExist) {
				continue // committed or removed since the directory was read
			}
			if err != nil {
				return n, fmt.Errorf("fs: purging uploads: %w", err)
			}
			if !fi.ModTime().Before(cutoff) {
				continue
			}
			if dir == s.uploads {
				s.kept.drop(e.Name()) // or its descriptor would hold the removed bytes
				s.runs.drop(e.Name())
				s.done.drop(e.Name())
			}
			err = s.fs.Remove(filepath.Join(dir, e.Name()))
			switch {
			case err == nil:
				n++
			case !errors.Is(err, iofs.ErrNotExist):
				return n, fmt.Errorf("fs: purging uploads: %w", err)
			}
		}
	}
	return n, nil
}
