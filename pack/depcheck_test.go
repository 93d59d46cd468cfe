package pack_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies: pack stands on the registry; it must not import
// attest, mirror, compliance, cmd or a storage backend. The client uses
// the wire types of both APIs it speaks, pack's and audit's.
func TestDependencies(t *testing.T) {
	const m = "github.com/packreg/packreg/"
	depcheck.Allow(t, ".", m+"digest", m+"oci", m+"semver", m+"storage", m+"registry", m+"internal/apierr", m+"internal/routes")
	depcheck.Allow(t, "client", m+"pack", m+"audit", m+"internal/restclient")
}
