package sqlite_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies: the SQLite backend is sqlmeta plus its driver.
func TestDependencies(t *testing.T) {
	depcheck.Allow(t, ".", "github.com/packreg/packreg/storage/sqlmeta", "modernc.org/sqlite", "modernc.org/sqlite/")
}
