package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	// large is the size of the "multi-MiB" blobs: bigger than any sane
	// buffer or S3 part, small enough to keep an S3 run fast.
	large = 20*mib + 3
)

// testCase is one subtest; it gets a fresh, empty store.
type testCase struct {
	name string
	run  func(t *testing.T, s storage.BlobStore)
}

// Run runs the suite. newStore returns a fresh, empty store; it is called once per subtest.
func Run(t *testing.T, newStore func(t *testing.T) storage.BlobStore) {
	var all []testCase
	all = append(all, roundTripCases()...)
	all = append(all, readCases()...)
	all = append(all, commitCases()...)
	all = append(all, appendCases()...)
	all = append(all, lifecycleCases()...)
	all = append(all, concurrentCases()...)
	all = append(all, walkCases()...)
	for _, c := range all {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			c.run(t, s)
		})
	}
}

// randomBytes returns n reproducible random bytes that are never valid
// UTF-8 (when n >= 4), so a store that treats blobs as text gets caught.
func randomBytes(n int, seed uint64) []byte {
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	mrand.NewChaCha8(key).Read(b)
	if n >= 4 {
		copy(b, []byte{0xff, 0xfe, 0x00, 0xc3}) // BOM-ish, NUL, truncated rune
	}
	return b
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newUpload is a session as the registry creates it before the first Append.
func newUpload(alg string) *storage.Upload {
	now := time.Now().UTC()
	return &storage.Upload{ID: newID(), Repo: "blobtest/repo", Algorithm: alg, Created: now, Updated: now}
}

// clone deep-copies u, so a store that scribbles on shared slices is seen.
func clone(u *storage.Upload) *storage.Upload {
	c := *u
	if u.HashState != nil {
		c.HashState = bytes.Clone(u.HashState)
	}
	if u.Backend != nil {
		c.Backend = bytes.Clone(u.Backend)
	}
	return &c
}

// requireSameUpload fails unless got is field-for-field want.
func requireSameUpload(t *testing.T, got, want *storage.Upload) {
	t.Helper()
	switch {
	case got.ID != want.ID, got.Repo != want.Repo:
		t.Fatalf("upload identity changed: %q/%q, want %q/%q", got.ID, got.Repo, want.ID, want.Repo)
	case got.Offset != want.Offset:
		t.Fatalf("upload Offset = %d, want %d", got.Offset, want.Offset)
	case got.Algorithm != want.Algorithm:
		t.Fatalf("upload Algorithm = %q, want %q", got.Algorithm, want.Algorithm)
	case !bytes.Equal(got.HashState, want.HashState):
		t.Fatalf("upload HashState changed")
	case !bytes.Equal(got.Backend, want.Backend):
		t.Fatalf("upload Backend changed")
	case !got.Created.Equal(want.Created), !got.Updated.Equal(want.Updated):
		t.Fatalf("upload times changed")
	case !reflect.DeepEqual(got, want):
		t.Fatalf("upload changed: %+v, want %+v", got, want)
	}
}

// session drives one upload and remembers the bytes acknowledged so far.
type session struct {
	t    *testing.T
	s    storage.BlobStore
	u    *storage.Upload
	data []byte
}

func start(t *testing.T, s storage.BlobStore, alg string) *session {
	return &session{t: t, s: s, u: newUpload(alg)}
}

// append sends chunk through r (bytes.Reader when nil) and checks that the
// upload advanced exactly: Offset, and a HashState that resumes to the
// digest of everything sent.
func (ss *session) append(chunk []byte, wrap func(io.Reader) io.Reader) {
	ss.t.Helper()
	var r io.Reader = bytes.NewReader(chunk)
	if wrap != nil {
		r = wrap(r)
	}
	if err := ss.s.Append(ss.t.Context(), ss.u, r); err != nil {
		ss.t.Fatalf("Append(%d bytes at %d): %v", len(chunk), ss.u.Offset, err)
	}
	start := len(ss.data)
	ss.data = append(ss.data, chunk...)
	requireState(ss.t, ss.s, ss.u, ss.data, start)
}

// requireState checks Offset and HashState of u against the bytes it
// holds. On a store whose hash runs behind Append (storage.HashLagger)
// the state may cover only the bytes before the last chunk, which starts
// at last: no fewer.
func requireState(t *testing.T, s storage.BlobStore, u *storage.Upload, data []byte, last int) {
	t.Helper()
	if u.Offset != int64(len(data)) {
		t.Fatalf("Offset = %d after %d bytes", u.Offset, len(data))
	}
	n := len(data)
	if l, ok := s.(storage.HashLagger); ok {
		if n = int(l.HashedUpTo(u)); n != last && n != len(data) {
			t.Fatalf("HashState covers %d bytes, want %d (all) or %d (before the last chunk)", n, len(data), last)
		}
	}
	h, err := digest.RestoreHash(u.Algorithm, u.HashState)
	if err != nil {
		t.Fatalf("HashState does not restore: %v", err)
	}
	if got, want := digest.FromHash(u.Algorithm, h), digest.FromBytes(u.Algorithm, data[:n]); got != want {
		t.Fatalf("HashState resumes to %s, want %s (the %s of the first %d of the %d bytes sent)", got, want, u.Algorithm, n, len(data))
	}
}

// commit commits the session under the digest of its data in alg.
func (ss *session) commit(alg string) digest.Digest {
	ss.t.Helper()
	d := digest.FromBytes(alg, ss.data)
	if err := ss.s.Commit(ss.t.Context(), ss.u, d); err != nil {
		ss.t.Fatalf("Commit(%s) of %d bytes: %v", d, len(ss.data), err)
	}
	return d
}

// push uploads data in one Append and commits it under sha256.
func push(t *testing.T, s storage.BlobStore, data []byte) digest.Digest {
	t.Helper()
	ss := start(t, s, digest.SHA256)
	ss.append(data, nil)
	return ss.commit(digest.SHA256)
}

// readBlob reads d from offset to the end.
func readBlob(t *testing.T, s storage.BlobStore, d digest.Digest, offset int64) []byte {
	t.Helper()
	rc, err := s.Open(t.Context(), d, offset)
	if err != nil {
		t.Fatalf("Open(%s, %d): %v", d, offset, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s from %d: %v", d, offset, err)
	}
	return b
}

// requireBlob checks that d is visible with exactly want as its bytes.
func requireBlob(t *testing.T, s storage.BlobStore, d digest.Digest, want []byte) {
	t.Helper()
	size, err := s.Stat(t.Context(), d)
	if err != nil {
		t.Fatalf("Stat(%s): %v", d, err)
	}
	if size != int64(len(want)) {
		t.Fatalf("Stat(%s) = %d bytes, want %d", d, size, len(want))
	}
	requireBytes(t, readBlob(t, s, d, 0), want)
}

// requireBytes compares without dumping megabytes into the log.
func requireBytes(t *testing.T, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Fatalf("got %d bytes, want %d; first difference at byte %d", len(got), len(want), i)
}

// requireAbsent checks that d is visible through neither Stat nor Open.
func requireAbsent(t *testing.T, s storage.BlobStore, d digest.Digest) {
	t.Helper()
	if size, err := s.Stat(t.Context(), d); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat(%s) = %d, %v; want ErrNotFound", d, size, err)
	}
	rc, err := s.Open(t.Context(), d, 0)
	if err == nil {
		rc.Close()
	}
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Open(%s) = %v; want ErrNotFound", d, err)
	}
}

func requireNonUTF8(t *testing.T, b []byte) {
	t.Helper()
	if utf8.Valid(b) {
		t.Fatal("test data is valid UTF-8; the generator is broken")
	}
}

// cancelled is a context that is already done.
func cancelled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}
