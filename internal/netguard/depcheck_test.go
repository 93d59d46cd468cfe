package netguard_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies keeps netguard a leaf any HTTP client can sit on.
func TestDependencies(t *testing.T) {
	depcheck.Allow(t, ".", "golang.org/x/net/publicsuffix")
}
