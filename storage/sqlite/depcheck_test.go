package sqlite_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

func TestDependencies(t *testing.T) {
	depcheck.Forbid(t, "github.com/packreg/packreg/storage/sqlite",
		"registry", "pack", "attest", "mirror", "compliance", "cmd", "conformance")
}
