package auth_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies: auth sits beside registry, over storage (the robots'
// records); it knows no route, no registry and nothing above.
func TestDependencies(t *testing.T) {
	const m = "github.com/packreg/packreg/"
	depcheck.Allow(t, ".", m+"storage", m+"oci", m+"internal/filestamp", "golang.org/x/crypto/bcrypt", "github.com/golang-jwt/jwt/v5")
}
