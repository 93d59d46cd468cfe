package fs

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// Store is a storage.BlobStore on a local directory tree.
type Store struct {
	fs      FS
	root    string
	blobs   string
	uploads string
	tmp     string
	// boot is the kernel's boot identity (Booter), empty when the FS has
	// none: Append then syncs every chunk.
	boot     string
	obs      atomic.Pointer[storage.OpObserver] // ObserveOps
	kept     idleSet[File]                      // upload data files open between Appends
	runs     idleSet[*hashRun]                  // hashes running behind Appends (behind.go)
	done     idleSet[hash.Hash]                 // hashes of sessions a Commit published (keepPublished)
	holdHash <-chan struct{}                    // tests: the hashes of Appends wait for it to close
}

var (
	_ storage.BlobStore     = (*Store)(nil)
	_ storage.Pinger        = (*Store)(nil)
	_ storage.OpsObservable = (*Store)(nil)
	_ io.Closer             = (*Store)(nil)
)

// Close stops the hashes still running behind Appends and closes the data
// files kept open between them; the server calls it at shutdown. The
// sessions go on from what was recorded, in this process or another.
func (s *Store) Close() error {
	s.runs.dropAll()
	s.done.dropAll()
	s.kept.dropAll()
	return nil
}

// ObserveOps is storage.OpsObservable: stat, open, delete, put, append, commit
// and abort are reported to fn (append's time includes reading its source,
// often a client's request body).
func (s *Store) ObserveOps(fn storage.OpObserver) { s.obs.Store(&fn) }

// observe reports one operation to the observer, if any; deferred with
// the method's named error.
func (s *Store) observe(op string, start time.Time, err *error) {
	if fn := s.obs.Load(); fn != nil {
		(*fn)(op, time.Since(start), *err)
	}
}

// Option configures a Store.
type Option func(*Store)

// WithFS replaces the real filesystem (tests use it to simulate crashes).
func WithFS(f FS) Option { return func(s *Store) { s.fs = f } }

// New returns a store rooted at root, creating its directories.
func New(root string, opts ...Option) (*Store, error) {
	s := &Store{fs: OS{}, root: root}
	s.kept.end = func(f File) { f.Close() }
	s.runs.end = (*hashRun).cancel
	s.done.end = func(hash.Hash) {}
	for _, o := range opts {
		o(s)
	}
	if b, ok := s.fs.(Booter); ok {
		if id, err := b.BootID(); err == nil {
			s.boot = id
		}
	}
	s.blobs = filepath.Join(root, "blobs")
	s.uploads = filepath.Join(root, "uploads")
	s.tmp = filepath.Join(root, "tmp")
	dirs := []string{
		filepath.Join(s.blobs, digest.SHA256),
		filepath.Join(s.blobs, digest.SHA512),
		s.uploads,
		s.tmp,
	}
	for _, d := range dirs {
		if err := s.fs.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("fs: %w", err)
		}
	}
	// Make the skeleton durable once, root's own name included, so later
	// syncs need only reach the directory they change.
	for _, d := range []string{filepath.Dir(root), root, s.blobs} {
		if err := s.fs.SyncDir(d); err != nil {
			return nil, fmt.Errorf("fs: %w", err)
		}
	}
	return s, nil
}

// Ping is storage.Pinger: the directories every write goes through are
// still there, so a data volume unmounted or removed under a running
// server makes it unready before a push fails. It writes nothing.
func (s *Store) Ping(ctx context.Context) error {
	for _, d := range []string{s.blobs, s.tmp} {
		fi, err := s.fs.Stat(d)
		if err == nil && !fi.IsDir() {
			err = errors.New("not a directory")
		}
		if err != nil {
			return fmt.Errorf("fs: %s: %w: %w", d, storage.ErrUnavailable, err)
		}
	}
	return ctx.Err()
}

// blobPath is blobs/<alg>/<hex[0:2]>/<hex>; d must have passed digest.Parse,
// which is what makes it safe to use in a path.
func (s *Store) blobPath(d digest.Digest) string {
	hex := d.Hex()
	return filepath.Join(s.blobs, d.Algorithm(), hex[:2], hex)
}

func (s *Store) uploadPath(id string) string { return filepath.Join(s.uploads, id) }

// checkID refuses IDs that could name anything but one file in uploads/.
func checkID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("fs: upload id of %d bytes: %w", len(id), storage.ErrNotFound)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("fs: upload id %q: invalid character: %w", id, storage.ErrNotFound)
		}
	}
	return nil
}

// checkBlob validates d before it becomes a path. No blob can have an
// invalid digest, so the error is also ErrNotFound.
func checkBlob(d digest.Digest) error {
	if _, err := digest.Parse(string(d)); err != nil {
		return fmt.Errorf("fs: %w: %w", storage.ErrNotFound, err)
	}
	return nil
}

// notFound maps a missing file to storage.ErrNotFound, keeping the cause.
func notFound(err error) error {
	if errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	}
	return err
}

// Stat implements storage.BlobStore.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (_ int64, err error) {
	defer s.observe("stat", time.Now(), &err)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := checkBlob(d); err != nil {
		return 0, err
	}
	fi, err := s.fs.Stat(s.blobPath(d))
	if err != nil {
		return 0, fmt.Errorf("fs: stat %s: %w", d, notFound(err))
	}
	return fi.Size(), nil
}

// Open implements storage.BlobStore.
func (s *Store) Open(ctx context.Context, d digest.Digest, offset int64) (_ io.ReadCloser, err error) {
	defer s.observe("open", time.Now(), &err)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkBlob(d); err != nil {
		return nil, err
	}
	f, err := s.fs.OpenFile(s.blobPath(d), os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("fs: open %s: %w", d, notFound(err))
	}
	fi, err := f.Stat()
	if err == nil && (offset < 0 || offset > fi.Size()) {
		err = fmt.Errorf("offset %d outside blob of %d bytes", offset, fi.Size())
	}
	if err == nil && offset > 0 {
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fs: open %s: %w", d, err)
	}
	return f, nil
}

// Delete implements storage.BlobStore. The removal is not fsynced: a blob
// that reappears after a crash is only garbage for GC to collect again.
func (s *Store) Delete(ctx context.Context, d digest.Digest) (err error) {
	defer s.observe("delete", time.Now(), &err)
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkBlob(d); err != nil {
		return err
	}
	if err := s.fs.Remove(s.blobPath(d)); err != nil {
		return fmt.Errorf("fs: delete %s: %w", d, notFound(err))
	}
	return nil
}
