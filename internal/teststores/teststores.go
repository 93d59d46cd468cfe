// Package teststores opens the embedded default stores (disk blobs, SQLite
// metadata) in a test's temp dir: the real thing a user runs, for the
// in-process tests of registry, pack, attest, mirror and cmd. Only tests
// import it.
package teststores

import (
	"path/filepath"
	"testing"

	"github.com/packreg/packreg/storage/fs"
	"github.com/packreg/packreg/storage/sqlite"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// Open returns a fresh disk blob store and SQLite metadata store under
// t.TempDir(), and the directory. The metadata store is closed at cleanup.
func Open(t testing.TB) (*fs.Store, *sqlmeta.Store, string) {
	t.Helper()
	dir := t.TempDir()
	blobs, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sqlite.Open(t.Context(), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	return blobs, meta, dir
}
