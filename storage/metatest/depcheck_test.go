package metatest_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

func TestDependencies(t *testing.T) {
	depcheck.Forbid(t, "github.com/packreg/packreg/storage/metatest",
		"registry", "pack", "attest", "mirror", "compliance", "cmd", "conformance",
		"storage/sqlite", "storage/postgres", "storage/fs", "storage/s3")
}
