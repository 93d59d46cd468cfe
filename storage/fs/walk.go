package fs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/packreg/packreg/digest"
)

// dirReader is the FS ability WalkBlobs needs; OS has it. A test FS
// without it makes WalkBlobs report errors.ErrUnsupported.
type dirReader interface {
	ReadDir(name string) ([]iofs.DirEntry, error)
}

func (OS) ReadDir(name string) ([]iofs.DirEntry, error) { return os.ReadDir(name) }

// WalkBlobs is storage.BlobWalker: blobs/<alg>/<hex[0:2]>/<hex>. Names
// that are not a blob's (nothing else is written there) are skipped.
func (s *Store) WalkBlobs(ctx context.Context, fn func(d digest.Digest, size int64, written time.Time) error) (err error) {
	defer s.observe("walk", time.Now(), &err)
	rd, ok := s.fs.(dirReader)
	if !ok {
		return fmt.Errorf("fs: walking blobs: %w", errors.ErrUnsupported)
	}
	for _, alg := range []string{digest.SHA256, digest.SHA512} {
		fans, err := rd.ReadDir(filepath.Join(s.blobs, alg))
		if err != nil {
			return fmt.Errorf("fs: walking blobs: %w", err)
		}
		for _, fan := range fans {
			if !fan.IsDir() {
				continue
			}
			dir := filepath.Join(s.blobs, alg, fan.Name())
			files, err := rd.ReadDir(dir)
			if err != nil {
				return fmt.Errorf("fs: walking blobs: %w", err)
			}
			for _, f := range files {
				if err := ctx.Err(); err != nil {
					return err
				}
				d, err := digest.Parse(alg + ":" + f.Name())
				if err != nil || !f.Type().IsRegular() || s.blobPath(d) != filepath.Join(dir, f.Name()) {
					continue
				}
				fi, err := f.Info()
				if errors.Is(err, iofs.ErrNotExist) {
					continue // deleted since the directory was read
				}
				if err != nil {
					return fmt.Errorf("fs: walking blobs: %w", err)
				}
				if err := fn(d, fi.Size(), fi.ModTime()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
