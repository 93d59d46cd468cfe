package ui_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies: the dashboard reads compliance's findings and the
// store's records; attest's reports come through Reporter, from cmd.
func TestDependencies(t *testing.T) {
	const m = "github.com/packreg/packreg/"
	depcheck.Allow(t, ".", m+"compliance", m+"storage", m+"digest", m+"internal/routes")
}
