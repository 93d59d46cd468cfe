package oci

import (
	"fmt"
	"regexp"
	"strings"
)

// NameGlob compiles a repository name glob into an anchored regexp: "*"
// matches within one path component, "**" across components, "?" one
// character but "/" ("acme/**" is every repository under acme/). Mirror
// scopes and auth rules read the same globs.
func NameGlob(g string) (*regexp.Regexp, error) {
	if g == "" || len(g) > 255 {
		return nil, fmt.Errorf("name glob %q: want 1 to 255 characters", g)
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(g); i++ {
		switch c := g[i]; {
		case c == '*' && i+1 < len(g) && g[i+1] == '*':
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}
