package retention_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies: retention stands on pack and the registry; it must
// not import attest, mirror, compliance, cmd or a storage backend.
func TestDependencies(t *testing.T) {
	const m = "github.com/packreg/packreg/"
	depcheck.Allow(t, ".", m+"digest", m+"semver", m+"storage", m+"registry", m+"pack", m+"internal/repopattern")
}
