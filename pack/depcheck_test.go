package pack_test

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

const module = "github.com/packreg/packreg/"

func TestDependencies(t *testing.T) {
	for _, pkg := range []string{"pack", "pack/audit", "pack/client"} {
		depcheck.Forbid(t, module+pkg, "attest", "mirror", "compliance", "cmd", "conformance",
			"storage/fs", "storage/s3", "storage/sqlite", "storage/postgres", "storage/sqlmeta")
	}
	// audit stands on its own (compliance will take the audit API over);
	// the client uses the wire types of both APIs. depcheck forbids whole
	// trees, so "pack itself, not its children" is checked here.
	for _, pkg := range []string{"pack/audit"} {
		out, err := exec.Command("go", "list", "-deps", "-test=false", module+pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		for _, bad := range []string{"pack", "pack/audit"} {
			if bad != pkg && slices.Contains(deps, module+bad) {
				t.Errorf("%s must not depend on %s", pkg, bad)
			}
		}
	}
}

func errorAs[T error](err error, target *T) bool { return errors.As(err, target) }
