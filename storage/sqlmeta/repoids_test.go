package sqlmeta_test

import (
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/sqlite"
	"github.com/packreg/packreg/storage/sqlmeta"
)

func openSQLite(t *testing.T, path string) *sqlmeta.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func blobDigest(s string) digest.Digest { return digest.FromBytes(digest.SHA256, []byte(s)) }

// A link into a repository the store has seen committed reads no id for
// it: one statement fewer than the first link after a restart, which
// looks the repository up.
func TestLinkIntoKnownRepositoryReadsNoID(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "meta.db")
	s := openSQLite(t, path)
	if err := s.LinkBlob(ctx, "acme/rules", blobDigest("a"), 1); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openSQLite(t, path) // a new process: knows no repository
	var statements atomic.Int64
	s.ObserveOps(func(op string, _ time.Duration, _ error) {
		if op != "commit" {
			statements.Add(1)
		}
	})
	count := func(blob string) int64 {
		t.Helper()
		before := statements.Load()
		if err := s.LinkBlob(ctx, "acme/rules", blobDigest(blob), 1); err != nil {
			t.Fatal(err)
		}
		return statements.Load() - before
	}
	first, second := count("b"), count("c")
	if second != first-1 {
		t.Fatalf("statements of a link: %d after a restart, %d into the repository just written; want one fewer", first, second)
	}
	for _, b := range []string{"a", "b", "c"} {
		if size, err := s.BlobSize(ctx, "acme/rules", blobDigest(b)); err != nil || size != 1 {
			t.Fatalf("blob %s: size %d, %v", b, size, err)
		}
	}
}

// A repository created by a write that rolled back is not remembered:
// SQLite gives its id to the next repository created, and a link into
// the first would land in the second.
func TestRolledBackRepositoryIsNotRemembered(t *testing.T) {
	ctx := t.Context()
	s := openSQLite(t, filepath.Join(t.TempDir(), "meta.db"))
	m := &storage.Manifest{Repo: "acme/gone", Digest: blobDigest("{}"), MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: 2, Payload: []byte("{}")}
	err := s.PutManifest(ctx, m, []string{"v1"}, storage.PutManifestOptions{
		TagWas: []storage.TagState{{Tag: "v1", Digest: blobDigest("elsewhere")}},
	})
	var moved *storage.TagMovedError
	if !errors.As(err, &moved) {
		t.Fatalf("conditional put on a tag that is not there: %v, want a TagMovedError", err)
	}
	if err := s.LinkBlob(ctx, "acme/next", blobDigest("next"), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.LinkBlob(ctx, "acme/gone", blobDigest("gone"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BlobSize(ctx, "acme/next", blobDigest("gone")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("blob linked into acme/gone found in acme/next: %v", err)
	}
	if size, err := s.BlobSize(ctx, "acme/gone", blobDigest("gone")); err != nil || size != 1 {
		t.Fatalf("blob linked into acme/gone: size %d, %v", size, err)
	}
}
