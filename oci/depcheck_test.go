package oci_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies keeps oci a leaf of vocabulary: digest, image-spec and
// go-digest (whose type image-spec names digests with), nothing else.
func TestDependencies(t *testing.T) {
	depcheck.Allow(t, ".", "github.com/packreg/packreg/digest",
		"github.com/opencontainers/image-spec/specs-go", "github.com/opencontainers/image-spec/specs-go/v1",
		"github.com/opencontainers/go-digest")
}
