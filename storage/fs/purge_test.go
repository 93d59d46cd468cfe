package fs_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/fs"
)

// PurgeUploads removes what crashes leave in uploads/ and tmp/ once it is
// older than the cutoff, and nothing else: not a live session's data, not
// a blob.
func TestPurgeUploads(t *testing.T) {
	root := t.TempDir()
	s, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	data := []byte("a committed blob")
	d := digest.FromBytes(digest.SHA256, data)
	if _, err := s.Put(ctx, d, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	stale := newUpload(digest.SHA256)
	live := newUpload(digest.SHA256)
	for _, u := range []*storage.Upload{stale, live} {
		if err := s.Append(ctx, u, bytes.NewReader([]byte("partial"))); err != nil {
			t.Fatal(err)
		}
	}
	orphan := filepath.Join(root, "tmp", "put-crashed")
	if err := os.WriteFile(orphan, []byte("half a blob"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-72 * time.Hour)
	for _, p := range []string{orphan, filepath.Join(root, "uploads", stale.ID), filepath.Join(root, "blobs", "sha256", d.Hex()[:2], d.Hex())} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PurgeUploads(ctx, time.Now().Add(-48*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("PurgeUploads = %d, %v; want the stale session's data and the orphan", n, err)
	}
	for _, p := range []string{orphan, filepath.Join(root, "uploads", stale.ID)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there (%v)", p, err)
		}
	}
	if err := s.Append(ctx, live, bytes.NewReader([]byte(" and more"))); err != nil {
		t.Fatalf("the live session lost its data: %v", err)
	}
	if size, err := s.Stat(ctx, d); err != nil || size != int64(len(data)) {
		t.Fatalf("the blob: %d, %v", size, err)
	}
	if n, err := s.PurgeUploads(ctx, time.Now().Add(-48*time.Hour)); err != nil || n != 0 {
		t.Fatalf("second PurgeUploads = %d, %v; want nothing left to purge", n, err)
	}
}
