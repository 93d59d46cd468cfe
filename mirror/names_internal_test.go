package mirror

import (
	"strings"
	"testing"

	"github.com/packreg/packreg/storage"
)

// The name rule holds however its pattern is compiled (now on first use).
func TestMirrorNameRule(t *testing.T) {
	for name, ok := range map[string]bool{
		"a": true, "eu-1.b_c": true, strings.Repeat("a", 63): true,
		"": false, "A": false, "-a": false, "a/b": false, strings.Repeat("a", 64): false, "a\n": false,
	} {
		err := (&Settings{Name: name}).check(storage.MirrorPull)
		if got := err == nil || !strings.Contains(err.Error(), "name"); got != ok {
			t.Errorf("name %q: err %v, want valid %v", name, err, ok)
		}
	}
}
