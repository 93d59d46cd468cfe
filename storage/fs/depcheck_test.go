package fs_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDepcheck keeps fs a leaf of storage: it may import storage, digest
// and the standard library, and golang.org/x/sys/unix for renameat2
// (absent from syscall), nothing else (tests excepted).
func TestDepcheck(t *testing.T) {
	depcheck.Allow(t, ".", "github.com/packreg/packreg/storage", "github.com/packreg/packreg/digest", "golang.org/x/sys/unix")
}
