package registry_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies: the registry stands on storage and the leaves only;
// pack, attest, mirror, compliance, cmd and the storage backends plug in
// from above.
func TestDependencies(t *testing.T) {
	const m = "github.com/packreg/packreg/"
	depcheck.Allow(t, ".", m+"digest", m+"oci", m+"storage", m+"internal/reqid", m+"internal/routes")
}
