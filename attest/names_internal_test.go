package attest

import (
	"strings"
	"testing"
)

// The trusted root name rule holds however its pattern is compiled (now on
// first use).
func TestRootNameRule(t *testing.T) {
	for name, ok := range map[string]bool{
		"a": true, "eu-1.b_c": true, strings.Repeat("a", 63): true,
		"": false, "A": false, "-a": false, "a/b": false, strings.Repeat("a", 64): false, "a\n": false,
	} {
		if err := checkRootName(name); (err == nil) != ok {
			t.Errorf("name %q: err %v, want valid %v", name, err, ok)
		}
	}
}
