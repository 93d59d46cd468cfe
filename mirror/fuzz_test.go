package mirror

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// Native fuzz targets for what a remote or a user hands the mirror code:
// WWW-Authenticate challenges, name globs and settings (version ranges are
// semver's). Each checks what an accepted input means, not only that nothing
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

// FuzzNameGlob: a compiled glob matches a pack name exactly when a
// straightforward matcher of the documented syntax does (* within a path
// segment, ** across segments, ? one character but a slash).
func FuzzNameGlob(f *testing.F) {
	f.Add("acme/**", "acme/team/rules")
	f.Fuzz(func(t *testing.T, glob, name string) {
		re, err := oci.NameGlob(glob)
		if err != nil {
			if glob != "" && len(glob) <= 255 {
				t.Fatalf("glob %q refused: %v", glob, err)
			}
			return
		}
		if !oci.ValidName(name) {
			return
		}
		if got, want := re.MatchString(name), globMatch(glob, name); got != want {
			t.Fatalf("glob %q on %q: %v, want %v", glob, name, got, want)
		}
	})
}

// globMatch matches by the documented rules, memoised so that many stars
// cost polynomial time.
func globMatch(g, s string) bool {
	memo := map[[2]int]bool{}
	var match func(i, j int) bool
	match = func(i, j int) bool {
		key := [2]int{i, j}
		if v, ok := memo[key]; ok {
			return v
		}
		var r bool
		switch {
		case i == len(g):
			r = j == len(s)
		case strings.HasPrefix(g[i:], "**"):
			for k := j; k <= len(s) && !r; k++ {
				r = match(i+2, k)
			}
		case g[i] == '*':
			for k := j; k <= len(s) && !r; k++ {
				r = match(i+1, k)
				if k < len(s) && s[k] == '/' {
					break
				}
			}
		case g[i] == '?':
			r = j < len(s) && s[j] != '/' && match(i+1, j+1)
		default:
			r = j < len(s) && s[j] == g[i] && match(i+1, j+1)
		}
		memo[key] = r
		return r
	}
	return match(0, 0)
}

// FuzzSettings: settings the API decodes and accepts are one JSON value,
// settled (checking
// them again changes nothing), name a bare http(s) origin, compile to a
// filter, and read back from their stored form exactly as given.
func FuzzSettings(f *testing.F) {
	f.Add([]byte(`{"name":"eu","url":"https://eu.registry.example/v2/","include":["acme/**"],"versions":">=1.0.0 <2",`+
		`"schedule":"15m","credentials":{"username":"bot","password":"pw"}}`), false)
	f.Fuzz(func(t *testing.T, body []byte, upstream bool) {
		var s Settings
		if apierr.DecodeJSON(bytes.NewReader(body), &s, maxBody) != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted %q, which is not one JSON value", body)
		}
		kind := storage.MirrorPush
		if upstream {
			kind = storage.MirrorPull
		}
		if s.check(kind) != nil {
			return
		}
		again := s
		if err := again.check(kind); err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("checked settings %+v change when checked again: %+v, %v", s, again, err)
		}
		u, err := url.Parse(s.URL)
		if err != nil || u.Scheme+"://"+u.Host != s.URL || u.Host == "" || u.User != nil {
			t.Fatalf("settings from %q keep url %q", body, s.URL)
		}
		s.filter() // panics if the checked settings do not compile
		var rec storage.Mirror
		if err := encode(&rec, s); err != nil {
			t.Fatal(err)
		}
		r, err := decode(&rec)
		if err != nil {
			t.Fatalf("stored settings of %q do not read back: %v", body, err)
		}
		want := s
		if want.Credentials != nil && want.Credentials.Kind() == "none" {
			want.Credentials = nil
		}
		if !reflect.DeepEqual(r.set, want) {
			t.Fatalf("settings %+v read back from their record as %+v", want, r.set)
		}
	})
}
