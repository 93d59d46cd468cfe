package fs_test

import (
	"bytes"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/blobtest"
	"github.com/packreg/packreg/storage/fs"
)

// These tests run the store on memFS, which forgets whatever was not synced
// when told to Crash, to show that a crash at any point leaves no partial
// blob visible and lets the upload resume from the state the registry
// recorded.

func memStore(t *testing.T, m *memFS) *fs.Store {
	t.Helper()
	s, err := fs.New(memRoot, fs.WithFS(m))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func blobPath(d digest.Digest) string {
	return filepath.Join(memRoot, "blobs", d.Algorithm(), d.Hex()[:2], d.Hex())
}

func uploadPath(id string) string { return filepath.Join(memRoot, "uploads", id) }

func randomData(n int, seed uint64) []byte {
	b := make([]byte, n)
	mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'f', 's'}).Read(b)
	return b
}

var idSeq struct {
	sync.Mutex
	n int
}

func newUpload(alg string) *storage.Upload {
	idSeq.Lock()
	defer idSeq.Unlock()
	idSeq.n++
	now := time.Now()
	return &storage.Upload{ID: fmt.Sprintf("upload-%04d", idSeq.n), Repo: "r", Algorithm: alg, Created: now, Updated: now}
}

func clone(u *storage.Upload) *storage.Upload {
	c := *u
	c.HashState = bytes.Clone(u.HashState)
	c.Backend = bytes.Clone(u.Backend)
	return &c
}

// failOn returns a hook failing the first op on a path with the given
// prefix (every such op when always is set).
func failOn(op, prefix string, always bool) func(string, string) error {
	var mu sync.Mutex
	done := false
	return func(o, p string) error {
		mu.Lock()
		defer mu.Unlock()
		if o == op && strings.HasPrefix(p, prefix) && (always || !done) {
			done = true
			return errInjected
		}
		return nil
	}
}

func requireBlob(t *testing.T, s *fs.Store, d digest.Digest, want []byte) {
	t.Helper()
	rc, err := s.Open(t.Context(), d, 0)
	if err != nil {
		t.Fatalf("Open(%s): %v", d, err)
	}
	defer rc.Close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("blob %s has %d bytes, not the %d committed", d, got.Len(), len(want))
	}
}

func requireAbsent(t *testing.T, s *fs.Store, d digest.Digest) {
	t.Helper()
	if _, err := s.Stat(t.Context(), d); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat(%s) = %v, want ErrNotFound", d, err)
	}
}

// TestBlobStoreOnMemFS runs the shared suite through the seam too, so the
// crash tests below exercise a filesystem the store is known to work on.
func TestBlobStoreOnMemFS(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) storage.BlobStore { return memStore(t, newMemFS()) })
}

// TestCrashDuringAppend: a failure inside Append (disk error, or a crash
// before its fsync) leaves u as recorded and the durable data at u.Offset.
func TestCrashDuringAppend(t *testing.T) {
	a, b := randomData(100*1024+1, 1), randomData(3<<20+7, 2)
	for _, tc := range []struct {
		name      string
		op        string
		first     bool // fail the first Append (offset 0) instead of the second
		crash     bool
		wantBytes int // upload file size right after the failure/crash
	}{
		{"write-error-no-crash", "write", false, false, len(a)},
		{"sync-error-no-crash", "sync", false, false, len(a)},
		{"crash-before-sync", "sync", false, true, len(a)},
		{"crash-before-sync-first-append", "sync", true, true, -1},
		{"crash-before-dir-sync-first-append", "syncdir", true, true, -1},
		{"crash-mid-write", "write", false, true, len(a)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemFS()
			s := memStore(t, m)
			u := newUpload(digest.SHA256)
			var recorded []byte
			if !tc.first {
				if err := s.Append(t.Context(), u, bytes.NewReader(a)); err != nil {
					t.Fatal(err)
				}
				recorded = a
			}
			rec := clone(u)
			prefix := uploadPath(u.ID)
			if tc.op == "syncdir" {
				prefix = filepath.Join(memRoot, "uploads")
			}
			m.hook = failOn(tc.op, prefix, false)
			chunk := b
			if err := s.Append(t.Context(), u, bytes.NewReader(chunk)); !errors.Is(err, errInjected) {
				t.Fatalf("Append = %v, want the injected failure", err)
			}
			m.hook = nil
			if u.Offset != rec.Offset || !bytes.Equal(u.HashState, rec.HashState) {
				t.Fatalf("failed Append moved the upload to %d", u.Offset)
			}
			if tc.crash {
				m.Crash()
				s = memStore(t, m)
			}
			got, ok := m.Files(memRoot)[uploadPath(u.ID)]
			switch {
			case tc.wantBytes < 0 && ok && len(got) != 0:
				t.Fatalf("after the crash the first upload file has %d bytes, want none", len(got))
			case tc.wantBytes >= 0 && !bytes.Equal(got, recorded):
				t.Fatalf("upload file has %d bytes, want the %d recorded", len(got), len(recorded))
			}
			if err := s.Append(t.Context(), u, bytes.NewReader(chunk)); err != nil {
				t.Fatalf("resume Append: %v", err)
			}
			want := append(bytes.Clone(recorded), chunk...)
			d := digest.FromBytes(digest.SHA256, want)
			if err := s.Commit(t.Context(), u, d); err != nil {
				t.Fatal(err)
			}
			m.Crash()
			requireBlob(t, memStore(t, m), d, want)
		})
	}
}

// TestCrashDuringCommit: a crash before the rename, or after it but before
// the directory fsync, publishes nothing; Commit then succeeds on retry and
// its result survives the next crash.
func TestCrashDuringCommit(t *testing.T) {
	data := randomData(2<<20+3, 3)
	d := digest.FromBytes(digest.SHA256, data)
	for _, tc := range []struct{ name, op, prefix string }{
		{"before-rename", "rename", blobPath(d)},
		{"before-mkdir", "mkdir", filepath.Dir(blobPath(d))},
		{"before-prefix-dir-sync", "syncdir", filepath.Join(memRoot, "blobs", "sha256")},
		{"after-rename-before-dir-sync", "syncdir", filepath.Dir(blobPath(d))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemFS()
			s := memStore(t, m)
			u := newUpload(digest.SHA256)
			if err := s.Append(t.Context(), u, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			m.hook = failOn(tc.op, tc.prefix, false)
			if err := s.Commit(t.Context(), clone(u), d); !errors.Is(err, errInjected) {
				t.Fatalf("Commit = %v, want the injected failure", err)
			}
			m.hook = nil
			m.Crash()
			s = memStore(t, m)
			requireAbsent(t, s, d)
			if err := s.Commit(t.Context(), clone(u), d); err != nil {
				t.Fatalf("Commit after the crash: %v", err)
			}
			m.Crash()
			requireBlob(t, memStore(t, m), d, data)
		})
	}
}

// TestCommitDropsReplayedBytesDurably: Commit of an older state truncates
// the bytes a lost Append wrote, and the truncation survives a crash.
func TestCommitDropsReplayedBytesDurably(t *testing.T) {
	m := newMemFS()
	s := memStore(t, m)
	a := randomData(5000, 4)
	u := newUpload(digest.SHA256)
	if err := s.Append(t.Context(), u, bytes.NewReader(a)); err != nil {
		t.Fatal(err)
	}
	rec := clone(u)
	if err := s.Append(t.Context(), u, bytes.NewReader(randomData(1<<20, 5))); err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(digest.SHA256, a)
	if err := s.Commit(t.Context(), rec, d); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	requireBlob(t, memStore(t, m), d, a)
}

// TestCrashAtEveryStep kills the store at each filesystem call of a push in
// turn (every later call fails too), crashes, and checks the invariants: an
// acknowledged Commit survives; otherwise the blob is absent or complete;
// and resuming from the last recorded state always produces the blob.
func TestCrashAtEveryStep(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []int
		alg    string
	}{
		{"two-appends", []int{70000, 2<<20 + 5}, digest.SHA256},
		{"sha512-digest-re-read", []int{3, 1<<20 + 1}, digest.SHA512},
		{"empty-without-append", nil, digest.SHA256},
		{"empty-append", []int{0}, digest.SHA256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var data []byte
			for i, n := range tc.chunks {
				data = append(data, randomData(n, 10+uint64(i))...)
			}
			d := digest.FromBytes(tc.alg, data)
			for step := 0; ; step++ {
				if crashAt(t, step, tc.chunks, data, d) {
					t.Logf("%d crash points", step)
					return
				}
			}
		})
	}
}

// dyingStore is a store on a new memFS whose filesystem calls fail from
// the one after number step on; *died says whether one did.
func dyingStore(t *testing.T, step int) (*memFS, *fs.Store, *bool) {
	t.Helper()
	m := newMemFS()
	s := memStore(t, m)
	calls, died := 0, false
	m.hook = func(op, p string) error {
		if calls++; calls > step {
			died = true
			return errInjected
		}
		return nil
	}
	return m, s, &died
}

// crashAt runs one push dying at call number step; it reports whether the
// push ran to the end without reaching it.
func crashAt(t *testing.T, step int, chunks []int, data []byte, d digest.Digest) (finished bool) {
	t.Helper()
	m, s, died := dyingStore(t, step)
	rec := newUpload(digest.SHA256) // what the registry has recorded
	committed := false
	off, err := 0, error(nil)
	for _, n := range chunks {
		u := clone(rec)
		if err = s.Append(t.Context(), u, bytes.NewReader(data[off:off+n])); err != nil {
			break
		}
		rec, off = u, off+n
	}
	if err == nil {
		committed = s.Commit(t.Context(), clone(rec), d) == nil
	}
	m.hook = nil
	if !*died {
		if !committed {
			t.Fatalf("step %d: push failed without a failure injected", step)
		}
		return true
	}
	m.Crash()
	s = memStore(t, m)
	if committed {
		requireBlob(t, s, d, data) // acknowledged, so durable
		return false
	}
	if size, err := s.Stat(t.Context(), d); err == nil {
		if size != int64(len(data)) {
			t.Fatalf("step %d: a %d-byte blob is visible after the crash, want %d or none", step, size, len(data))
		}
		requireBlob(t, s, d, data)
	} else if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("step %d: Stat: %v", step, err)
	}
	// Resume as the registry would: from the recorded state.
	u := clone(rec)
	if err := s.Append(t.Context(), u, bytes.NewReader(data[rec.Offset:])); err != nil {
		t.Fatalf("step %d: resume from offset %d: %v", step, rec.Offset, err)
	}
	if err := s.Commit(t.Context(), u, d); err != nil {
		t.Fatalf("step %d: commit after resume: %v", step, err)
	}
	m.Crash()
	requireBlob(t, memStore(t, m), d, data)
	return false
}

// TestNeverVisibleBeforeRename watches the namespace before every
// filesystem call of a push: the blob's path must not exist until the
// rename that publishes it, and then hold the whole blob.
func TestNeverVisibleBeforeRename(t *testing.T) {
	data := randomData(3<<20+1, 20)
	for _, alg := range []string{digest.SHA256, digest.SHA512} {
		t.Run(alg, func(t *testing.T) {
			d := digest.FromBytes(alg, data)
			m := newMemFS()
			s := memStore(t, m)
			renamed, calls := false, 0
			var bad error
			m.hook = func(op, p string) error {
				calls++
				got, exists := m.Files(memRoot)[blobPath(d)]
				switch {
				case exists && !renamed && bad == nil:
					bad = fmt.Errorf("blob path exists (%d bytes) before the rename, at %s %s", len(got), op, p)
				case exists && !bytes.Equal(got, data) && bad == nil:
					bad = fmt.Errorf("blob path holds %d bytes, not the blob", len(got))
				}
				if op == "rename" && p == blobPath(d) {
					renamed = true
				}
				return nil
			}
			u := newUpload(digest.SHA256)
			for _, part := range [][]byte{data[:1], data[1 : 2<<20], data[2<<20:]} {
				if err := s.Append(t.Context(), u, bytes.NewReader(part)); err != nil {
					t.Fatal(err)
				}
			}
			// A wrong digest first: it must not publish anything either.
			wrong := digest.FromBytes(alg, data[1:])
			if err := s.Commit(t.Context(), clone(u), wrong); !errors.Is(err, storage.ErrDigestMismatch) {
				t.Fatalf("Commit(wrong) = %v", err)
			}
			if len(m.Files(filepath.Join(memRoot, "blobs"))) != 0 {
				t.Fatal("a failed Commit left a file under blobs/")
			}
			// Push again, correctly.
			u = newUpload(digest.SHA256)
			if err := s.Append(t.Context(), u, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(t.Context(), u, d); err != nil {
				t.Fatal(err)
			}
			m.hook = nil
			if bad != nil {
				t.Fatal(bad)
			}
			if !renamed || calls == 0 {
				t.Fatalf("no rename observed in %d calls", calls)
			}
			requireBlob(t, s, d, data)
		})
	}
}
