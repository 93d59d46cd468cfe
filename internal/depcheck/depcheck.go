// Package depcheck asserts which packages a package may import, so the
// layering in DESIGN.md stays one-way. Every package with a place in that
// layering has a depcheck_test.go calling Allow with the list of what it
// may import: a new import fails the test until it is named there, on
// purpose, next to the reason.
package depcheck

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Allow fails t when a non-test file of the package in dir imports anything
// but the standard library and the allowed import paths. An allowed entry
// ending in "/" admits a whole tree. It checks direct imports only: since
// every internal package has its own list, what a package reaches through
// another is bounded by that one's list.
func Allow(t testing.TB, dir string, allowed ...string) {
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
			t.Errorf("%s imports %s, which its depcheck allow-list does not name", f, p)
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
