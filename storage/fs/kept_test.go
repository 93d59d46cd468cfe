package fs_test

import (
	"bytes"
	"errors"
	"os"
	"sync/atomic"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/fs"
)

// openCounter is the real filesystem, counting opens.
type openCounter struct {
	fs.OS
	opens atomic.Int64
}

func (c *openCounter) OpenFile(name string, flag int, perm os.FileMode) (fs.File, error) {
	c.opens.Add(1)
	return c.OS.OpenFile(name, flag, perm)
}

func appendAll(t *testing.T, s *fs.Store, u *storage.Upload, b []byte) {
	t.Helper()
	if err := s.Append(t.Context(), u, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}

// TestKeptUploadFile: a session's data file is opened once for all its
// chunks and its Commit, and no descriptor outlives the session, whether
// it is committed or aborted.
func TestKeptUploadFile(t *testing.T) {
	c := &openCounter{}
	s, err := fs.New(t.TempDir(), fs.WithFS(c))
	if err != nil {
		t.Fatal(err)
	}
	data := randomData(3<<20+5, 50)
	u := newUpload(digest.SHA256)
	before := c.opens.Load()
	for _, part := range [][]byte{data[:1<<20], data[1<<20 : 2<<20+3], data[2<<20+3:]} {
		appendAll(t, s, u, part)
		if n := fs.KeptFiles(s); n != 1 {
			t.Fatalf("kept files after an Append: %d, want 1", n)
		}
	}
	d := digest.FromBytes(digest.SHA256, data)
	if err := s.Commit(t.Context(), u, d); err != nil {
		t.Fatal(err)
	}
	if got := c.opens.Load() - before; got != 1 {
		t.Errorf("opens of the data file for 3 Appends and a Commit: %d, want 1", got)
	}
	if n := fs.KeptFiles(s); n != 0 {
		t.Errorf("kept files after Commit: %d, want 0", n)
	}
	requireBlob(t, s, d, data)

	u = newUpload(digest.SHA256)
	appendAll(t, s, u, data[:10])
	if err := s.Abort(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if n := fs.KeptFiles(s); n != 0 {
		t.Errorf("kept files after Abort: %d, want 0", n)
	}
}

// TestSessionAcrossStores: two stores on one directory (two replicas on a
// shared filesystem, or a restarted process) take turns with one session;
// each one's kept file must follow what the other wrote, and a store whose
// kept file was committed by the other must never write into the blob.
func TestSessionAcrossStores(t *testing.T) {
	dir := t.TempDir()
	a, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := randomData(4<<20+7, 51)
	d := digest.FromBytes(digest.SHA256, data)
	u := newUpload(digest.SHA256)
	appendAll(t, a, u, data[:1<<20])
	appendAll(t, b, u, data[1<<20:2<<20])
	// a's kept file is positioned at 1 MiB; the session is at 2 MiB.
	appendAll(t, a, u, data[2<<20:3<<20+1])
	// A replay of b's chunk on a (the 202 was lost, say) goes where the
	// session says, dropping the bytes past it.
	replay := clone(u)
	appendAll(t, a, u, data[3<<20+1:])
	appendAll(t, a, replay, data[3<<20+1:])
	if err := b.Commit(t.Context(), replay, d); err != nil {
		t.Fatal(err)
	}
	requireBlob(t, b, d, data)
	requireBlob(t, a, d, data)

	// a still keeps the data file, now the published blob: a stale Append
	// must find the session's data gone, not write through its descriptor.
	if n := fs.KeptFiles(a); n != 1 {
		t.Fatalf("a's kept files: %d, want 1", n)
	}
	stale := clone(u)
	stale.Offset -= 1 << 20
	if err := a.Append(t.Context(), stale, bytes.NewReader(data[:1<<20])); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Append after the other store committed = %v, want ErrNotFound", err)
	}
	requireBlob(t, a, d, data)
	if n := fs.KeptFiles(a); n != 0 {
		t.Errorf("a's kept files after finding the session gone: %d, want 0", n)
	}
}
