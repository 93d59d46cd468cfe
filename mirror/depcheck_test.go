package mirror_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies: mirror copies through the registry's service and
// remotes behind netguard; it must not import pack (semver and oci are
// the leaves it needs), attest, compliance, cmd or a storage backend.
func TestDependencies(t *testing.T) {
	const m = "github.com/packreg/packreg/"
	depcheck.Allow(t, ".", m+"digest", m+"oci", m+"semver", m+"storage", m+"registry",
		m+"internal/apierr", m+"internal/restclient", m+"internal/netguard", m+"internal/routes")
}
