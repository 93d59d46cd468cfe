package repopattern

import "testing"

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pat, repo string
		want      bool
	}{
		{"**", "a/b/c", true},
		{"acme/*", "acme/rules", true},
		{"acme/*", "acme/rules/x", false},
		{"acme/**", "acme/rules/x", true},
		{"acme/**", "acme", false},
		{"ac*/**", "acme/x", true},
		{"other", "acme", false},
	} {
		if got := Match(c.pat, c.repo); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pat, c.repo, got, c.want)
		}
	}
	for _, bad := range []string{"", "a/**/b", "[", "**x", "/**", "/acme/**", "acme/", "acme//x", "/"} {
		if Check(bad) == nil {
			t.Errorf("Check(%q) accepted", bad)
		}
	}
	for _, good := range []string{"**", "acme/*", "acme/**"} {
		if err := Check(good); err != nil {
			t.Errorf("Check(%q): %v", good, err)
		}
	}
}
