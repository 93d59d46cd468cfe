package fs

import (
	"context"
	"crypto/rand"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
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
	n, err = s.putData(ctx, f, h, r)
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
		err = s.publish(ctx, name, d)
	}
	if err != nil {
		_ = s.fs.Remove(name)
		return 0, fmt.Errorf("fs: put %s: %w", d, err)
	}
	return n, nil
}

// smallSize is what Put reads before it knows whether a blob is small: a
// config, a signature or a manifest's worth. A small blob is hashed and
// written from one pooled buffer of this size, on the calling goroutine,
// where copyHashed would start two goroutines and take a 256 KiB buffer
// (16 concurrent small pushes would hold 4 MiB).
const smallSize = 64 << 10

var smallPool = sync.Pool{New: func() any { b := make([]byte, smallSize); return &b }}

// putData writes r to f and h: at once when it fits in smallSize, else its
// first smallSize bytes and the rest through copyHashed.
func (s *Store) putData(ctx context.Context, f File, h hash.Hash, r io.Reader) (int64, error) {
	buf := smallPool.Get().(*[]byte)
	defer smallPool.Put(buf)
	n, rerr := fill(r, *buf)
	if rerr != nil && rerr != io.EOF {
		return 0, fmt.Errorf("read: %w", rerr)
	}
	h.Write((*buf)[:n])
	if _, err := f.Write((*buf)[:n]); err != nil {
		return 0, fmt.Errorf("write: %w", err)
	}
	if rerr == io.EOF {
		return int64(n), nil
	}
	rest, err := copyHashed(ctx, f, int64(n), h, r)
	return int64(n) + rest, err
}
