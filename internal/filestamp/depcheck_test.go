package filestamp_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies: filestamp is a leaf over the standard library.
func TestDependencies(t *testing.T) {
	depcheck.Allow(t, ".")
}
