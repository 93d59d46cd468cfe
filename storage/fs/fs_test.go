package fs_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/blobtest"
	"github.com/packreg/packreg/storage/fs"
)

func newStore(t *testing.T) *fs.Store {
	t.Helper()
	s, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBlobStore(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) storage.BlobStore { return newStore(t) })
}

func TestBlobStoreRepair(t *testing.T) {
	var mu sync.Mutex
	roots := map[storage.BlobStore]string{}
	blobtest.RunRepair(t, func(t *testing.T) storage.BlobStore {
		root := t.TempDir()
		s, err := fs.New(root)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		roots[s] = root
		return s
	}, func(t *testing.T, s storage.BlobStore, d digest.Digest) {
		mu.Lock()
		p := filepath.Join(roots[s], "blobs", d.Algorithm(), d.Hex()[:2], d.Hex())
		mu.Unlock()
		b, err := os.ReadFile(p)
		if err == nil {
			b[0] ^= 0xff
			err = os.WriteFile(p, b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestPing: the readiness probe fails once the store's directories are
// gone (a data volume unmounted under a running server).
func TestPing(t *testing.T) {
	root := t.TempDir()
	s, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := os.RemoveAll(filepath.Join(root, "tmp")); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Ping without its tmp directory: %v, want ErrUnavailable", err)
	}
}

// opCounter is a memFS hook that counts calls per op.
type opCounter struct {
	mu     sync.Mutex
	counts map[string]int
	paths  []string
}

func (c *opCounter) hook(op, p string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[op]++
	c.paths = append(c.paths, op+" "+p)
	return nil
}

func (c *opCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.counts
	c.counts, c.paths = nil, nil
	return got
}

// TestRejectsUnsafeNames: upload IDs and digests become paths, so anything
// that could escape its directory is refused before any filesystem call.
func TestRejectsUnsafeNames(t *testing.T) {
	m := newMemFS()
	s := memStore(t, m)
	var c opCounter
	m.hook = c.hook
	for _, id := range []string{"", "..", "../uploads-x", "a/b", "a\\b", "a.b", "a b", "é", "a\x00", strings.Repeat("a", 65)} {
		u := &storage.Upload{ID: id, Algorithm: digest.SHA256}
		if err := s.Append(t.Context(), u, bytes.NewReader([]byte("x"))); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Append(id %q) = %v, want ErrNotFound", id, err)
		}
		if err := s.Commit(t.Context(), u, digest.FromBytes(digest.SHA256, nil)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Commit(id %q) = %v, want ErrNotFound", id, err)
		}
		if err := s.Abort(t.Context(), u); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Abort(id %q) = %v, want ErrNotFound", id, err)
		}
	}
	good := &storage.Upload{ID: strings.Repeat("A-z9", 16), Algorithm: digest.SHA256}
	for _, d := range []digest.Digest{
		"", "sha256", "sha256:", "sha256:../../../etc/passwd", "md5:d41d8cd98f00b204e9800998ecf8427e",
		digest.Digest(strings.ToUpper(string(digest.FromBytes(digest.SHA256, nil)))),
		digest.FromBytes(digest.SHA256, nil)[:70],
	} {
		if _, err := s.Stat(t.Context(), d); !errors.Is(err, storage.ErrNotFound) || !errors.Is(err, digest.ErrInvalid) {
			t.Errorf("Stat(%q) = %v, want ErrNotFound and digest.ErrInvalid", d, err)
		}
		if _, err := s.Open(t.Context(), d, 0); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Open(%q) = %v, want ErrNotFound", d, err)
		}
		if err := s.Delete(t.Context(), d); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Delete(%q) = %v, want ErrNotFound", d, err)
		}
		if err := s.Commit(t.Context(), good, d); !errors.Is(err, digest.ErrInvalid) {
			t.Errorf("Commit(%q) = %v, want digest.ErrInvalid", d, err)
		}
	}
	if u := (&storage.Upload{ID: "ok", Algorithm: "md5"}); !errors.Is(s.Append(t.Context(), u, bytes.NewReader(nil)), digest.ErrInvalid) {
		t.Error("Append with an unsupported algorithm did not fail with digest.ErrInvalid")
	}
	if got := c.take(); len(got) != 0 {
		t.Fatalf("rejected calls touched the filesystem: %v", c.paths)
	}
	// The longest valid ID works.
	if err := s.Append(t.Context(), good, bytes.NewReader([]byte("{}"))); err != nil {
		t.Fatal(err)
	}
}

// TestLayout pins the on-disk layout drawn in doc.go.
func TestLayout(t *testing.T) {
	root := t.TempDir()
	s, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"blobs/sha256", "blobs/sha512", "uploads", "tmp"} {
		if fi, err := os.Stat(filepath.Join(root, d)); err != nil || !fi.IsDir() {
			t.Fatalf("%s: %v", d, err)
		}
	}
	data := randomData(1<<20+5, 30)
	u := newUpload(digest.SHA256)
	if err := s.Append(t.Context(), u, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "uploads", u.ID)); err != nil || fi.Size() != u.Offset {
		t.Fatalf("upload file: %v (offset %d)", err, u.Offset)
	}
	d := digest.FromBytes(digest.SHA512, data)
	if err := s.Commit(t.Context(), u, d); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "blobs", "sha512", d.Hex()[:2], d.Hex()))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("blob file: %v, %d bytes", err, len(got))
	}
	empty := digest.FromBytes(digest.SHA256, nil)
	if err := s.Commit(t.Context(), newUpload(digest.SHA256), empty); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "blobs", "sha256", empty.Hex()[:2], empty.Hex())); err != nil || fi.Size() != 0 {
		t.Fatalf("empty blob: %v", err)
	}
	for _, dir := range []string{"uploads", "tmp"} {
		if ents, err := os.ReadDir(filepath.Join(root, dir)); err != nil || len(ents) != 0 {
			t.Fatalf("%s/ after commits: %v, %d entries", dir, err, len(ents))
		}
	}
	// New over an existing root keeps what is there.
	s2, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	requireBlob(t, s2, d, data)
}

// TestSyncBudget pins the cost of durability: no fsync per Append; in
// Commit one of the data file and one of uploads/ (the file's name), a
// rename and a directory fsync; neither the data fsync nor a rename for a
// blob that already exists.
//
// It runs where the filesystem cannot rename without replacing (the
// store stats first); TestSyncBudgetNoReplace pins the other case.
func TestSyncBudget(t *testing.T) {
	m := newMemFS()
	m.plainRename = true
	s := memStore(t, m)
	var c opCounter
	m.hook = c.hook
	data := randomData(3<<20+1, 31)
	d := digest.FromBytes(digest.SHA256, data)
	push := func() (appends, commit map[string]int) {
		u := newUpload(digest.SHA256)
		if err := s.Append(t.Context(), u, bytes.NewReader(data[:1<<20])); err != nil {
			t.Fatal(err)
		}
		first := c.take()
		if err := s.Append(t.Context(), u, bytes.NewReader(data[1<<20:])); err != nil {
			t.Fatal(err)
		}
		second := c.take()
		// Append syncs nothing: Commit makes the bytes durable (durable.go).
		if first["sync"] != 0 || second["sync"] != 0 || first["syncdir"] != 0 || second["syncdir"] != 0 {
			t.Fatalf("fsyncs per Append: %v, %v; want none", first, second)
		}
		if err := s.Commit(t.Context(), u, d); err != nil {
			t.Fatal(err)
		}
		return first, c.take()
	}
	_, commit := push()
	// The data file and uploads/ (its name) synced once; new prefix
	// directory: mkdir + sync of blobs/sha256, then the rename's dir sync.
	if commit["sync"] != 1 || commit["rename"] != 2 || commit["mkdir"] != 1 || commit["syncdir"] != 3 {
		t.Fatalf("first Commit ops: %v", commit)
	}
	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	c.take()
	_, commit = push()
	if commit["sync"] != 1 || commit["rename"] != 1 || commit["mkdir"] != 0 || commit["syncdir"] != 2 {
		t.Fatalf("Commit into an existing prefix: %v", commit)
	}
	// A duplicate push: verified, then its data is removed without the
	// data fsync a publish needs; the blob's directory is synced.
	_, commit = push()
	if commit["sync"] != 0 || commit["rename"] != 0 || commit["syncdir"] != 1 || commit["remove"] != 1 {
		t.Fatalf("Commit of an existing blob: %v", commit)
	}
}

// TestSyncBudgetNoReplace: where the filesystem renames without
// replacing in one call (renameat2 RENAME_NOREPLACE), publishing looks at
// the target through the rename alone: a Commit stats the blob once (its
// own look, which spares a duplicate the data fsync), not again before
// the rename.
func TestSyncBudgetNoReplace(t *testing.T) {
	m := newMemFS()
	s := memStore(t, m)
	var c opCounter
	m.hook = c.hook
	data := randomData(1<<20+1, 32)
	d := digest.FromBytes(digest.SHA256, data)
	push := func() map[string]int {
		u := newUpload(digest.SHA256)
		if err := s.Append(t.Context(), u, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		c.take()
		if err := s.Commit(t.Context(), u, d); err != nil {
			t.Fatal(err)
		}
		return c.take()
	}
	// New prefix directory: the rename finds it missing, mkdir + sync of
	// blobs/sha256, the rename again, its directory synced.
	if got := push(); got["stat"] != 1 || got["rename"] != 2 || got["mkdir"] != 1 || got["syncdir"] != 3 {
		t.Fatalf("first Commit ops: %v", got)
	}
	if got := push(); got["stat"] != 1 || got["rename"] != 0 || got["sync"] != 0 || got["syncdir"] != 1 || got["remove"] != 1 {
		t.Fatalf("Commit of an existing blob: %v", got)
	}
	requireBlob(t, s, d, data)
}

// TestResumeWithoutHashState: a session that lost its hash state (an older
// metadata row, say) is rebuilt from the data on disk.
func TestResumeWithoutHashState(t *testing.T) {
	s := newStore(t)
	data := randomData(2<<20+9, 32)
	u := newUpload(digest.SHA256)
	if err := s.Append(t.Context(), u, bytes.NewReader(data[:1<<20+1])); err != nil {
		t.Fatal(err)
	}
	u.HashState = nil
	if err := s.Append(t.Context(), u, bytes.NewReader(data[1<<20+1:])); err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(digest.SHA256, data)
	if err := s.Commit(t.Context(), u, d); err != nil {
		t.Fatal(err)
	}
	requireBlob(t, s, d, data)
	// Commit without state re-reads too.
	u = newUpload(digest.SHA256)
	if err := s.Append(t.Context(), u, bytes.NewReader(data[:10])); err != nil {
		t.Fatal(err)
	}
	u.HashState = nil
	if err := s.Commit(t.Context(), u, digest.FromBytes(digest.SHA256, data[:10])); err != nil {
		t.Fatal(err)
	}
}

// TestUploadShorterThanState: data shorter than the recorded offset (another
// copy of the session rewound it) is a conflict, not silent corruption.
func TestUploadShorterThanState(t *testing.T) {
	s := newStore(t)
	u := newUpload(digest.SHA256)
	if err := s.Append(t.Context(), u, bytes.NewReader([]byte("0123456789"))); err != nil {
		t.Fatal(err)
	}
	ahead := clone(u)
	ahead.Offset += 5
	if err := s.Append(t.Context(), ahead, bytes.NewReader([]byte("x"))); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("Append past the data = %v, want ErrConflict", err)
	}
	if err := s.Commit(t.Context(), ahead, digest.FromBytes(digest.SHA256, []byte("0123456789"))); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("Commit past the data = %v, want ErrConflict", err)
	}
	if err := s.Commit(t.Context(), u, digest.FromBytes(digest.SHA256, []byte("0123456789"))); err != nil {
		t.Fatalf("Commit of the real state: %v", err)
	}
}
