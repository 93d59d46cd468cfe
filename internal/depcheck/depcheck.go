// Package depcheck asserts which packreg packages a package may depend
// on, so the layering in DESIGN.md stays one-way. Each top-level package has a
// depcheck_test.go calling Forbid.
package depcheck

import (
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
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

// Allow fails t when a non-test file of the package in dir imports anything
// but the standard library and the allowed import paths. An allowed entry
// ending in "/" admits a whole tree. It checks direct imports only: it keeps
// leaves (a store, a test suite) leaves.
func Allow(t *testing.T, dir string, allowed ...string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no Go files (%v)", dir, err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range ast.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if !strings.Contains(strings.Split(p, "/")[0], ".") || allowedPath(p, allowed) {
				continue // the standard library, or listed
			}
			t.Errorf("%s imports %s", f, p)
		}
	}
}

func allowedPath(p string, allowed []string) bool {
	for _, a := range allowed {
		if p == a || strings.HasSuffix(a, "/") && strings.HasPrefix(p, a) {
			return true
		}
	}
	return false
}
