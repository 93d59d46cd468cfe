package restclient_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies keeps restclient below every package with a client:
// it knows the API's error shape and nothing else of packreg.
func TestDependencies(t *testing.T) {
	depcheck.Allow(t, ".", "github.com/packreg/packreg/internal/apierr")
}
