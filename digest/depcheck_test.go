package digest_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies keeps digest a leaf: the standard library only.
func TestDependencies(t *testing.T) {
	depcheck.Allow(t, ".")
}
