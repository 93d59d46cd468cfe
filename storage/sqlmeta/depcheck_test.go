package sqlmeta_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies: sqlmeta is database/sql over storage's records.
// Database drivers belong to the backend packages (sqlite, postgres): sqlmeta
// names none, so both backends share every line of it.
func TestDependencies(t *testing.T) {
	const m = "github.com/packreg/packreg/"
	depcheck.Allow(t, ".", m+"digest", m+"oci", m+"storage")
}
