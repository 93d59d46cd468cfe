package attest_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies: attest stands beside pack, above the registry; it
// must not import pack, mirror, compliance, cmd or a storage backend.
// sigstore verifies the signatures.
func TestDependencies(t *testing.T) {
	const m = "github.com/packreg/packreg/"
	depcheck.Allow(t, ".", m+"digest", m+"oci", m+"storage", m+"registry", m+"internal/apierr", m+"internal/routes",
		"github.com/sigstore/sigstore/pkg/cryptoutils", "github.com/sigstore/sigstore/pkg/signature")
}
