package mirror

import (
	"maps"
	"regexp"
	"strings"
	"testing"
)

// Native fuzz targets for what a remote or a user hands the mirror code:
// WWW-Authenticate challenges, Link headers, version ranges and name
// globs. Each checks what an accepted input means, not only that nothing
// panics. Seeds are in testdata/fuzz; `go test` runs them as ordinary
// tests and `make fuzz-short` fuzzes briefly.

// challengeRE is RFC 9110's WWW-Authenticate grammar (§11.6.1, with the
// recipient's list rule of §5.6.1.2), obs-text being any non-ASCII
// character.
var challengeRE = func() *regexp.Regexp {
	const (
		token  = "[!#$%&'*+.^_`|~0-9A-Za-z-]+"
		quoted = `"(?:[\t !#-\[\]-~]|[^\x00-\x7f]|\\[\t -~]|\\[^\x00-\x7f])*"`
		param  = token + `[ \t]*=[ \t]*(?:` + token + `|` + quoted + `)`
		t68    = `[A-Za-z0-9._~+/-]+=*`
	)
	list := func(elem string) string { return `(?:` + elem + `)?(?:[ \t]*,[ \t]*(?:` + elem + `)?)*` }
	chal := token + `(?: +(?:` + t68 + `|` + list(param) + `))?`
	return regexp.MustCompile(`^[ \t]*` + list(chal) + `[ \t]*$`)
}()

// FuzzParseChallenge: a header that is not well formed yields no scheme
// and no parameters (so no realm to send a token request to), nor does one
// that names a parameter twice; parameters written by the grammar, quoting
// and escaping included, come back exactly as written.
func FuzzParseChallenge(f *testing.F) {
	f.Add(`Bearer realm="https://auth.example/token",service="registry",scope="repository:acme/rules:pull"`,
		"Bearer", "realm", "https://auth.example/token", "service", `a "quoted" \ value`, "scope", "repository:a:pull")
	f.Fuzz(func(t *testing.T, h, scheme, k1, v1, k2, v2, k3, v3 string) {
		got, params := parseChallenge(h)
		if (got != "" || len(params) > 0) && !challengeRE.MatchString(h) {
			t.Fatalf("malformed %q read as %q %q", h, got, params)
		}
		if got != strings.ToLower(got) {
			t.Fatalf("scheme %q is not lowercased", got)
		}

		want := map[string]string{}
		dup := false
		var b strings.Builder
		b.WriteString(scheme)
		for i, kv := range [][2]string{{k1, v1}, {k2, v2}, {k3, v3}} {
			k, v := kv[0], kv[1]
			if !isToken(k) || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
				return
			}
			_, seen := want[strings.ToLower(k)]
			dup = dup || seen
			want[strings.ToLower(k)] = v
			b.WriteString([]string{" ", ", ", " ,\t"}[i])
			b.WriteString(k + "=")
			if isToken(v) && i == 2 {
				b.WriteString(v)
			} else {
				b.WriteString(`"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`)
			}
		}
		if !isToken(scheme) {
			return
		}
		got, params = parseChallenge(b.String())
		if dup {
			if got != "" || len(params) > 0 {
				t.Fatalf("%q names a parameter twice, read as %q %q", b.String(), got, params)
			}
			return
		}
		if got != strings.ToLower(scheme) || !maps.Equal(params, want) {
			t.Fatalf("%q read as %q %q, want %q %q", b.String(), got, params, strings.ToLower(scheme), want)
		}
	})
}

func isToken(s string) bool {
	return s != "" && strings.Trim(s, "!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") == ""
}
