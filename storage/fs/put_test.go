package fs_test

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/fs"
)

// failingReader yields some bytes, then fails like a client hanging up.
type failingReader struct{ n int }

var errHangUp = errors.New("client hung up")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errHangUp
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

// Put stores a verified blob, leaves an existing one alone, and keeps
// nothing (in blobs/ or tmp/) of data that does not hash to its digest or
// whose reader failed.
func TestPut(t *testing.T) {
	m := newMemFS()
	s := memStore(t, m)
	tmp := filepath.Join(memRoot, "tmp")
	data := randomData(1024, 41)
	d := digest.FromBytes(digest.SHA256, data)
	for range 2 { // the second Put finds the blob there
		n, err := s.Put(t.Context(), d, bytes.NewReader(data))
		if err != nil || n != int64(len(data)) {
			t.Fatalf("Put = %d, %v", n, err)
		}
		requireBlob(t, s, d, data)
		if left := m.Files(tmp); len(left) != 0 {
			t.Fatalf("tmp/ after Put: %v", left)
		}
	}

	other := digest.FromBytes(digest.SHA256, []byte("other"))
	if _, err := s.Put(t.Context(), other, bytes.NewReader(data)); !errors.Is(err, storage.ErrDigestMismatch) {
		t.Fatalf("Put of mismatching data = %v, want ErrDigestMismatch", err)
	}
	requireAbsent(t, s, other)
	if _, err := s.Put(t.Context(), other, &failingReader{n: 3000}); !errors.Is(err, errHangUp) {
		t.Fatalf("Put from a failing reader = %v, want its error", err)
	}
	requireAbsent(t, s, other)
	if left := m.Files(tmp); len(left) != 0 {
		t.Fatalf("tmp/ after failed Puts: %v", left)
	}
	if _, err := s.Put(t.Context(), digest.Digest("sha256:../../x"), bytes.NewReader(nil)); err == nil {
		t.Fatal("Put accepted a malformed digest")
	}
	empty := digest.FromBytes(digest.SHA256, nil)
	if _, err := s.Put(t.Context(), empty, bytes.NewReader(nil)); err != nil {
		t.Fatal(err)
	}
	requireBlob(t, s, empty, nil)
}

// Put's durability costs one file fsync and one directory fsync (the
// blob's own directory), one fewer than Append then Commit, which also
// make the session's data file name durable. Where the filesystem can
// rename without replacing, that rename is the only look at the target.
func TestPutSyncBudget(t *testing.T) {
	for _, plain := range []bool{false, true} {
		m, s := renamingStore(t, plain)
		seed := randomData(10, 1)
		if _, err := s.Put(t.Context(), digest.FromBytes(digest.SHA256, seed), bytes.NewReader(seed)); err != nil {
			t.Fatal(err)
		}
		var c opCounter
		m.hook = c.hook
		// A blob under the same prefix directory: no mkdir.
		data := dataUnder(digest.FromBytes(digest.SHA256, seed), 2)
		if _, err := s.Put(t.Context(), digest.FromBytes(digest.SHA256, data), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		got := c.take()
		if got["sync"] != 1 || got["syncdir"] != 1 || got["rename"] != 1 || got["open"] != 1 {
			t.Fatalf("plain rename %v: Put ops: %v, want one open, sync, rename and syncdir", plain, got)
		}
		if !plain && got["stat"] != 0 {
			t.Fatalf("Put ops: %v, want no stat: the rename says whether the blob exists", got)
		}
	}
}

// A crash at any filesystem call of a Put leaves the blob absent or whole,
// and whole whenever Put returned nil.
func TestCrashDuringPutAtEveryStep(t *testing.T) {
	data := randomData(2<<20+7, 43)
	d := digest.FromBytes(digest.SHA256, data)
	for _, plain := range []bool{false, true} {
		crashDuringPut(t, data, d, plain)
	}
}

// crashDuringPut is TestCrashDuringPutAtEveryStep on a filesystem that
// renames without replacing in one call, or (plain) not.
func crashDuringPut(t *testing.T, data []byte, d digest.Digest, plain bool) {
	for step := 0; ; step++ {
		m, s, died := dyingStore(t, step)
		m.plainRename = plain
		_, err := s.Put(t.Context(), d, bytes.NewReader(data))
		m.hook = nil
		if !*died {
			if err != nil {
				t.Fatalf("step %d: Put failed without a failure injected: %v", step, err)
			}
			t.Logf("plain rename %v: %d crash points", plain, step)
			return
		}
		m.Crash()
		s = memStore(t, m)
		if err == nil {
			requireBlob(t, s, d, data) // acknowledged, so durable
			continue
		}
		if size, serr := s.Stat(t.Context(), d); serr == nil {
			if size != int64(len(data)) {
				t.Fatalf("step %d: a %d-byte blob is visible after the crash", step, size)
			}
			requireBlob(t, s, d, data)
		} else if !errors.Is(serr, storage.ErrNotFound) {
			t.Fatalf("step %d: Stat: %v", step, serr)
		}
		// Pushed again, it is there for good.
		if _, err := s.Put(t.Context(), d, io.MultiReader(bytes.NewReader(data))); err != nil {
			t.Fatalf("step %d: Put after the crash: %v", step, err)
		}
		m.Crash()
		requireBlob(t, memStore(t, m), d, data)
	}
}

// Put takes a small blob in one buffer and a larger one in two steps (its
// first 64 KiB, then the stream): every size around the seam stores the
// same bytes, and a reader failing past it still keeps nothing.
func TestPutSizes(t *testing.T) {
	m := newMemFS()
	s := memStore(t, m)
	for _, n := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 3<<20 + 5} {
		data := randomData(n, uint64(n))
		d := digest.FromBytes(digest.SHA256, data)
		if got, err := s.Put(t.Context(), d, bytes.NewReader(data)); err != nil || got != int64(n) {
			t.Fatalf("Put of %d bytes = %d, %v", n, got, err)
		}
		requireBlob(t, s, d, data)
	}
	other := digest.FromBytes(digest.SHA256, []byte("other"))
	if _, err := s.Put(t.Context(), other, &failingReader{n: 200 << 10}); !errors.Is(err, errHangUp) {
		t.Fatalf("Put from a reader failing after 200 KiB = %v, want its error", err)
	}
	requireAbsent(t, s, other)
	if left := m.Files(filepath.Join(memRoot, "tmp")); len(left) != 0 {
		t.Fatalf("tmp/ after a failed Put: %v", left)
	}
}

// A Put that finds its blob already published does not answer before
// the blob's name is durable: the publisher may not have synced the
// directory yet (here its sync failed; under load it is merely still to
// come), and a crash then would lose a blob both pushes acknowledged.
func TestPutOfABlobPublishedButNotYetDurable(t *testing.T) {
	for _, plain := range []bool{false, true} {
		m, s := renamingStore(t, plain)
		data := randomData(1024, 44)
		d := digest.FromBytes(digest.SHA256, data)
		// Make the prefix directory durable first, so only the blob's own
		// name is at stake.
		seed := dataUnder(d, 45)
		if _, err := s.Put(t.Context(), digest.FromBytes(digest.SHA256, seed), bytes.NewReader(seed)); err != nil {
			t.Fatal(err)
		}
		m.hook = failOn("syncdir", filepath.Dir(blobPath(d)), false)
		if _, err := s.Put(t.Context(), d, bytes.NewReader(data)); !errors.Is(err, errInjected) {
			t.Fatalf("plain rename %v: first Put = %v, want the injected failure", plain, err)
		}
		m.hook = nil
		if _, err := s.Put(t.Context(), d, bytes.NewReader(data)); err != nil {
			t.Fatalf("plain rename %v: second Put: %v", plain, err)
		}
		m.Crash()
		requireBlob(t, memStore(t, m), d, data)
	}
}

// dataUnder is 1 KiB of data, the first from seed on, whose blob shares
// d's prefix directory.
func dataUnder(d digest.Digest, seed uint64) []byte {
	for ; ; seed++ {
		data := randomData(1024, seed)
		if digest.FromBytes(digest.SHA256, data).Hex()[:2] == d.Hex()[:2] {
			return data
		}
	}
}

// renamingStore is a store on a new memFS that can rename without
// replacing, or (plain) not.
func renamingStore(t *testing.T, plain bool) (*memFS, *fs.Store) {
	m := newMemFS()
	m.plainRename = plain
	return m, memStore(t, m)
}
