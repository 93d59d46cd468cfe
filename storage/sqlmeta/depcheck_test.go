package sqlmeta_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

func TestDependencies(t *testing.T) {
	const pkg = "github.com/packreg/packreg/storage/sqlmeta"
	depcheck.Forbid(t, pkg, "registry", "pack", "attest", "mirror", "compliance", "cmd", "conformance",
		"storage/sqlite", "storage/postgres")
	// Database drivers belong to the backend packages: sqlmeta stays
	// database/sql only, so both backends share every line of it.
	out, err := exec.Command("go", "list", "-deps", "-test=false", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "modernc.org/") || strings.HasPrefix(dep, "github.com/jackc/") {
			t.Errorf("sqlmeta depends on driver package %s", dep)
		}
	}
}
