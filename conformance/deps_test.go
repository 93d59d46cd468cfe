package conformance

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoInternalImports keeps this package a black box: it may depend on
// third-party modules (pgx to make test databases), never on packreg code.
func TestNoInternalImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/packreg/packreg/"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		dep, _, _ := strings.Cut(line, " ") // "pkg [pkg.test]" for test variants
		rel, ok := strings.CutPrefix(dep, module)
		if !ok || rel == "conformance" || rel == "conformance.test" {
			continue
		}
		t.Errorf("conformance depends on %s: it must test packreg only over the wire", dep)
	}
}
