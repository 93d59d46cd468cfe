package bundle

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/packreg/packreg/digest"
)

// spool is an import's staging area: every blob and manifest of the
// bundle, stored by digest (never by a path the archive names) in one
// file that is unlinked as soon as it is created, so nothing is left
// behind whatever happens, a crash included, and nothing in it is
// visible to anyone. Each item is hashed on its way in and kept only if
// it matches its digest.
type spool struct {
	f     spoolFile
	mu    sync.Mutex
	end   int64
	items map[digest.Digest]spoolItem
	buf   []byte
}

type spoolItem struct{ off, size int64 }

// spoolFile is an open, unlinked file, or memory in tests.
type spoolFile interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
}

// newFileSpool makes a spool in dir.
func newFileSpool(dir string) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "bundle-import-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return newSpool(f), nil
}

func newSpool(f spoolFile) *spool {
	return &spool{f: f, items: map[digest.Digest]spoolItem{}, buf: make([]byte, 1<<20)}
}

// errMismatch: an item's bytes are not its digest's (or not its size).
var errMismatch = errors.New("content does not match")

// add stores the bytes of r as item d: exactly want bytes when want >= 0,
// at most max otherwise. It fails with errMismatch when they do not hash
// to d or have another length, and with errTooLarge past max.
func (s *spool) add(d digest.Digest, r io.Reader, want, max int64) (int64, error) {
	h := digest.NewHash(d.Algorithm())
	if h == nil {
		return 0, fmt.Errorf("%w: %s", digest.ErrInvalid, d)
	}
	limit := max
	if want >= 0 {
		limit = want
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	start, n := s.end, int64(0)
	for {
		k, err := r.Read(s.buf)
		if k > 0 {
			if n+int64(k) > limit {
				if want >= 0 {
					return n, fmt.Errorf("%w: %s is longer than the %d bytes it is listed with", errMismatch, d, want)
				}
				return n, fmt.Errorf("%w: %s is larger than %d bytes", errTooLarge, d, max)
			}
			h.Write(s.buf[:k])
			if _, werr := s.f.WriteAt(s.buf[:k], start+n); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
	}
	s.end = start + n
	if want >= 0 && n != want {
		return n, fmt.Errorf("%w: %s has %d bytes, listed with %d", errMismatch, d, n, want)
	}
	if got := digest.FromHash(d.Algorithm(), h); got != d {
		return n, fmt.Errorf("%w: its bytes hash to %s", errMismatch, got)
	}
	s.items[d] = spoolItem{start, n}
	return n, nil
}

func (s *spool) has(d digest.Digest) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[d]
	return it.size, ok
}

// open reads item d.
func (s *spool) open(d digest.Digest) (*io.SectionReader, bool) {
	s.mu.Lock()
	it, ok := s.items[d]
	s.mu.Unlock()
	if !ok {
		return nil, false
	}
	return io.NewSectionReader(s.f, it.off, it.size), true
}

// bytes reads item d whole; it must be at most max bytes.
func (s *spool) bytes(d digest.Digest, max int64) ([]byte, error) {
	r, ok := s.open(d)
	if !ok {
		return nil, fmt.Errorf("%s is not in the bundle", d)
	}
	if r.Size() > max {
		return nil, fmt.Errorf("%s has %d bytes, more than the %d it may have", d, r.Size(), max)
	}
	b := make([]byte, r.Size())
	_, err := io.ReadFull(r, b)
	return b, err
}

func (s *spool) digests() []digest.Digest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]digest.Digest, 0, len(s.items))
	for d := range s.items {
		out = append(out, d)
	}
	return out
}

func (s *spool) close() error { return s.f.Close() }

// memFile is a spoolFile in memory, for tests and the fuzz target.
type memFile struct {
	mu sync.Mutex
	b  []byte
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	copy(m.b[off:], p)
	return len(p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) Close() error { return nil }
