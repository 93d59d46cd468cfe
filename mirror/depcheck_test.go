package mirror_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

func TestDependencies(t *testing.T) {
	depcheck.Forbid(t, "github.com/packreg/packreg/mirror",
		"compliance", "cmd", "conformance", "attest",
		"storage/fs", "storage/s3", "storage/sqlite", "storage/postgres", "storage/sqlmeta")
}
