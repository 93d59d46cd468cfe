package blobtest_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDepcheck keeps blobtest a leaf of storage: storage, digest and the
// standard library only.
func TestDepcheck(t *testing.T) {
	depcheck.Allow(t, ".", "github.com/packreg/packreg/storage", "github.com/packreg/packreg/digest")
}
