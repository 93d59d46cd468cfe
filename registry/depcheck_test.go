package registry_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

func TestDependencies(t *testing.T) {
	depcheck.Forbid(t, "github.com/packreg/packreg/registry",
		"pack", "attest", "mirror", "compliance", "cmd", "conformance",
		"storage/fs", "storage/s3", "storage/sqlite", "storage/postgres", "storage/sqlmeta")
}
