package attest_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies: attest stands beside pack, above the registry; it
// must not import pack, mirror, compliance, cmd or a storage backend.
// sigstore verifies the signatures, sigstore-go the keyless ones.
func TestDependencies(t *testing.T) {
	const m = "github.com/packreg/packreg/"
	depcheck.Allow(t, ".", m+"digest", m+"oci", m+"storage", m+"registry", m+"internal/apierr", m+"internal/routes", m+"internal/repopattern", m+"internal/filestamp",
		"github.com/sigstore/sigstore/pkg/cryptoutils", "github.com/sigstore/sigstore/pkg/signature",
		// keyless: sigstore-go verifies, over its bundle, DSSE and Rekor types
		"github.com/sigstore/sigstore-go/pkg/bundle", "github.com/sigstore/sigstore-go/pkg/fulcio/certificate",
		"github.com/sigstore/sigstore-go/pkg/root", "github.com/sigstore/sigstore-go/pkg/tlog",
		"github.com/sigstore/sigstore-go/pkg/verify", "github.com/secure-systems-lab/go-securesystemslib/dsse",
		"github.com/sigstore/protobuf-specs/gen/pb-go/common/v1", "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1")
}
