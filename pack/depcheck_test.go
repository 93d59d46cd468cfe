package pack_test

import (
	"errors"
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies: pack stands on the registry; it must not import
// attest, mirror, compliance, cmd or a storage backend. audit stands on its
// own (compliance will take the audit API over): not even pack. The client
// uses the wire types of both APIs.
func TestDependencies(t *testing.T) {
	const m = "github.com/packreg/packreg/"
	depcheck.Allow(t, ".", m+"digest", m+"oci", m+"semver", m+"storage", m+"registry", m+"internal/apierr")
	depcheck.Allow(t, "audit", m+"storage", m+"internal/apierr")
	depcheck.Allow(t, "client", m+"pack", m+"pack/audit", m+"internal/apierr")
}

func errorAs[T error](err error, target *T) bool { return errors.As(err, target) }
