package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// An unknown user is checked against a hash as costly as a real user's,
// made when the file is loaded (not at package init).
func TestUnknownUserCostsABcrypt(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := LoadHtpasswd(path)
	if err != nil {
		t.Fatal(err)
	}
	if h.Verify("bob", "pw") {
		t.Fatal("unknown user bob verified")
	}
	if !h.Verify("alice", "pw") {
		t.Fatal("alice refused")
	}
	cost, err := bcrypt.Cost(dummyHash())
	if err != nil || cost != bcrypt.DefaultCost {
		t.Fatalf("dummy hash cost %d, %v; want %d", cost, err, bcrypt.DefaultCost)
	}
}

// The robot name rule holds however its pattern is compiled (now on first
// use).
func TestRobotNameRule(t *testing.T) {
	for name, ok := range map[string]bool{
		"a": true, "ci-1.b_c": true, strings.Repeat("a", 64): true,
		"": false, "A": false, "-a": false, "a/b": false, strings.Repeat("a", 65): false, "a\n": false,
	} {
		if got := ValidRobotName(name); got != ok {
			t.Errorf("ValidRobotName(%q) = %v, want %v", name, got, ok)
		}
	}
}
