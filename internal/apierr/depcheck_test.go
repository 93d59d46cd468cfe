package apierr_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// Every API package uses apierr, so it must sit below all of them.
func TestDependencies(t *testing.T) {
	depcheck.Forbid(t, "github.com/packreg/packreg/internal/apierr",
		"pack", "attest", "mirror", "compliance", "cmd", "conformance")
}
