package fs

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

var _ storage.BlobPutter = (*Store)(nil)

// Put implements storage.BlobPutter: r is written to tmp/put-<random>,
// hashed as it streams, fsynced, verified and renamed into blobs/ (publish
// fsyncs that directory). tmp/ itself is never fsynced: nothing needs the
// staging name after a crash, which at worst leaves an unreferenced file in
// tmp/, never a partial blob under blobs/.
func (s *Store) Put(ctx context.Context, d digest.Digest, r io.Reader) (n int64, err error) {
	defer s.observe("put", time.Now(), &err)
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("fs: put %s: %w", d, err)
	}
	if _, err := digest.Parse(string(d)); err != nil {
		return 0, fmt.Errorf("fs: put %s: %w", d, err)
	}
	name := filepath.Join(s.tmp, "put-"+rand.Text())
	f, err := s.fs.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, fmt.Errorf("fs: put %s: %w", d, err)
	}
	h := digest.NewHash(d.Algorithm())
	n, err = copyHashed(ctx, f, 0, h, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if got := digest.FromHash(d.Algorithm(), h); got != d {
			err = fmt.Errorf("%w: data is %s, not %s", storage.ErrDigestMismatch, got, d)
		}
	}
	if err == nil {
		err = s.publish(name, d)
	}
	if err != nil {
		_ = s.fs.Remove(name)
		return 0, fmt.Errorf("fs: put %s: %w", d, err)
	}
	return n, nil
}
