package depcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeT records what Allow reports instead of failing.
type fakeT struct {
	testing.TB
	errs []string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.errs = append(f.errs, format)
}

// TestAllow: an import the list does not name is refused; the standard
// library, listed paths and listed trees are not; test files are not read.
func TestAllow(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.go", "package a\nimport (\n\t\"fmt\"\n\t\"example.com/x\"\n\t\"example.com/tree/y\"\n)\n")
	write("a_test.go", "package a\nimport \"example.com/only/in/tests\"\n")
	for _, c := range []struct {
		allowed []string
		refused int
	}{
		{nil, 2},
		{[]string{"example.com/x"}, 1},
		{[]string{"example.com/x", "example.com/tree/"}, 0},
		{[]string{"example.com/x", "example.com/tree"}, 1}, // no "/": the path itself only
	} {
		ft := &fakeT{TB: t}
		Allow(ft, dir, c.allowed...)
		if len(ft.errs) != c.refused {
			t.Errorf("allowed %q: %d refused (%s), want %d", c.allowed, len(ft.errs), strings.Join(ft.errs, "; "), c.refused)
		}
	}
}
