package bundle_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies: bundle sits between mirror (whose copy engine it
// drives) and cmd. It asks attest (signatures) and pack (lifecycle)
// through small interfaces cmd plugs in, never by import.
func TestDependencies(t *testing.T) {
	const m = "github.com/packreg/packreg/"
	depcheck.Allow(t, ".", m+"digest", m+"oci", m+"semver", m+"storage", m+"registry", m+"mirror",
		m+"internal/apierr", m+"internal/routes",
		"github.com/sigstore/sigstore/pkg/cryptoutils", "github.com/sigstore/sigstore/pkg/signature",
		"github.com/google/go-containerregistry/pkg/v1", "github.com/google/go-containerregistry/pkg/v1/empty",
		"github.com/google/go-containerregistry/pkg/v1/layout")
}
