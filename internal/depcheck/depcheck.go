// Package depcheck asserts which packreg packages a package may depend
// on, so the layering in DESIGN.md stays one-way. Each top-level package has a
// depcheck_test.go calling Forbid.
package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/packreg/packreg/"

// Forbid fails t when pkg (an import path) depends, directly or not, on any
// package under one of the forbidden module-relative prefixes ("pack", "attest").
func Forbid(t *testing.T, pkg string, forbidden ...string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-test=false", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	for _, dep := range strings.Fields(string(out)) {
		rel, ok := strings.CutPrefix(dep, module)
		if !ok {
			continue
		}
		for _, f := range forbidden {
			if rel == f || strings.HasPrefix(rel, f+"/") {
				t.Errorf("%s must not depend on %s (found %s)", pkg, f, dep)
			}
		}
	}
}
