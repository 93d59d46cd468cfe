package audit_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies: audit stands on its own, below pack, attest and
// mirror (compliance will take the audit API over): it reads the trail
// and the outbox from storage and answers in the API's error shape,
// nothing else; not even pack, under which it used to live.
func TestDependencies(t *testing.T) {
	const m = "github.com/packreg/packreg/"
	depcheck.Allow(t, ".", m+"storage", m+"internal/apierr", m+"internal/routes")
}
