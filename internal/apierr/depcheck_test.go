package apierr_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// Every API package uses apierr, so it must sit below all of them.
func TestDependencies(t *testing.T) {
	const m = "github.com/packreg/packreg/"
	depcheck.Allow(t, ".", m+"oci", m+"storage", m+"internal/reqid")
}
