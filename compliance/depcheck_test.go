package compliance_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies: compliance reads what the others record, through
// storage and the Verifier cmd gives it; it imports none of them.
func TestDependencies(t *testing.T) {
	const m = "github.com/packreg/packreg/"
	depcheck.Allow(t, ".", m+"digest", m+"storage", m+"registry", m+"internal/apierr", m+"internal/routes", m+"internal/repopattern", m+"internal/restclient")
}
