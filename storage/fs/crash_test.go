package fs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
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
// recorded, or, when a restart of the machine lost bytes Append had not
// synced, end it cleanly.

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

// writeUpload writes b at offset at of upload id's data file, durably
// (file and name): what the disk holds after a restart, or bytes changed
// under the store.
func writeUpload(t *testing.T, m *memFS, id string, at int64, b []byte) {
	t.Helper()
	writeAt(t, m, uploadPath(id), at, b)
}

// writeAt writes b at offset at of file name, durably (file and name).
func writeAt(t *testing.T, m *memFS, name string, at int64, b []byte) {
	t.Helper()
	f, err := m.OpenFile(name, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.Seek(at, io.SeekStart)
	}
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = m.SyncDir(filepath.Dir(name))
	}
	if err != nil {
		t.Fatal(err)
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

// TestCrashDuringAppend: a failure inside Append (a disk error, a killed
// process) leaves u as recorded, and the upload resumes from it; a restart
// of the machine before Commit made the bytes durable loses the session
// with ErrUploadLost (Append does not sync: see durable.go), and never
// yields a blob. Starting over then produces the blob.
func TestCrashDuringAppend(t *testing.T) {
	a, b := randomData(100*1024+1, 1), randomData(3<<20+7, 2)
	for _, tc := range []struct {
		name   string
		fail   bool // inject a write error in the second Append
		crash  string
		resume bool // the upload resumes from the recorded state
	}{
		{"write-error-no-crash", true, "", true},
		{"write-error-process-restart", true, "process", true},
		{"process-restart-after-append", false, "process", true},
		{"crash-mid-write", true, "machine", false},
		{"crash-after-append", false, "machine", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemFS()
			s := memStore(t, m)
			u := newUpload(digest.SHA256)
			if err := s.Append(t.Context(), u, bytes.NewReader(a)); err != nil {
				t.Fatal(err)
			}
			rec := clone(u)
			if tc.fail {
				m.hook = failOn("write", uploadPath(u.ID), false)
				if err := s.Append(t.Context(), u, bytes.NewReader(b)); !errors.Is(err, errInjected) {
					t.Fatalf("Append = %v, want the injected failure", err)
				}
				m.hook = nil
				if u.Offset != rec.Offset || !bytes.Equal(u.HashState, rec.HashState) || !bytes.Equal(u.Backend, rec.Backend) {
					t.Fatalf("failed Append moved the upload to %d", u.Offset)
				}
			}
			switch tc.crash {
			case "process":
				s = memStore(t, m) // same kernel: its page cache keeps the bytes
			case "machine":
				m.Crash()
				s = memStore(t, m)
			}
			want := append(bytes.Clone(a), b...)
			d := digest.FromBytes(digest.SHA256, want)
			u = clone(rec)
			err := s.Append(t.Context(), u, bytes.NewReader(b))
			if err == nil {
				err = s.Commit(t.Context(), u, d)
			}
			if tc.resume {
				if err != nil {
					t.Fatalf("resume: %v", err)
				}
				m.Crash()
				requireBlob(t, memStore(t, m), d, want)
				return
			}
			if !errors.Is(err, storage.ErrUploadLost) {
				t.Fatalf("resume after the machine restarted = %v, want ErrUploadLost (the unsynced bytes are gone)", err)
			}
			if got := m.Files(memRoot); len(got) != 0 {
				t.Fatalf("files left after the lost upload: %d", len(got))
			}
			requireAbsent(t, s, d)
			u = newUpload(digest.SHA256)
			if err := s.Append(t.Context(), u, bytes.NewReader(want)); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(t.Context(), u, d); err != nil {
				t.Fatal(err)
			}
			m.Crash()
			requireBlob(t, memStore(t, m), d, want)
		})
	}
}

// TestRestartProvesUnsyncedBytes: after a restart of the machine the store
// cannot trust a data file of the right length for bytes that were not
// synced (a filesystem may show zeros, or old blocks). It hashes the data
// again: intact bytes continue the upload; other bytes end it with
// ErrUploadLost and never become a blob under the session's digest.
func TestRestartProvesUnsyncedBytes(t *testing.T) {
	data := randomData(2<<20+9, 6)
	d := digest.FromBytes(digest.SHA256, data)
	for _, garble := range []bool{false, true} {
		t.Run(fmt.Sprintf("garbled=%v", garble), func(t *testing.T) {
			m := newMemFS()
			s := memStore(t, m)
			u := newUpload(digest.SHA256)
			if err := s.Append(t.Context(), u, bytes.NewReader(data[:1<<20])); err != nil {
				t.Fatal(err)
			}
			// What the disk holds after the restart, same length either way.
			content := bytes.Clone(data[:1<<20])
			if garble {
				clear(content[4096:8192])
			}
			writeUpload(t, m, u.ID, 0, content)
			m.Crash()
			s = memStore(t, m)
			err := s.Append(t.Context(), u, bytes.NewReader(data[1<<20:]))
			if err == nil {
				err = s.Commit(t.Context(), u, d)
			}
			if !garble {
				if err != nil {
					t.Fatalf("resume of intact bytes: %v", err)
				}
				m.Crash()
				requireBlob(t, memStore(t, m), d, data)
				return
			}
			if !errors.Is(err, storage.ErrUploadLost) {
				t.Fatalf("resume of garbled bytes = %v, want ErrUploadLost", err)
			}
			requireAbsent(t, s, d)
			if got := m.Files(memRoot); len(got) != 0 {
				t.Fatalf("garbled data left behind: %d files", len(got))
			}
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
	// Resume as the registry would: from the recorded state. Bytes the
	// crash caught unsynced (rec has a durability mark then) may be lost:
	// the session then ends with ErrUploadLost and the client starts over.
	u := clone(rec)
	err = s.Append(t.Context(), u, bytes.NewReader(data[rec.Offset:]))
	if err == nil {
		err = s.Commit(t.Context(), u, d)
	}
	if errors.Is(err, storage.ErrUploadLost) && len(rec.Backend) > 0 && rec.Offset > 0 {
		requireAbsent(t, s, d)
		u = newUpload(digest.SHA256)
		if err = s.Append(t.Context(), u, bytes.NewReader(data)); err == nil {
			err = s.Commit(t.Context(), u, d)
		}
	}
	if err != nil {
		t.Fatalf("step %d: resume from offset %d: %v", step, rec.Offset, err)
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
