package mirror

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestLinkNext: the next page of a listing is the link whose relation types
// include "next", in every form RFC 8288 allows a remote to write it; a
// page link that is not exactly that is no next page.
func TestLinkNext(t *testing.T) {
	for _, c := range []struct{ h, want string }{
		{`</v2/a/tags/list?last=b&n=1000>; rel="next"`, "/v2/a/tags/list?last=b&n=1000"},
		{`</v2/_catalog?last=a%2Fb>;rel="next"`, "/v2/_catalog?last=a%2Fb"},
		// A comma in the target is the URI's, not the list's.
		{`</v2/a/tags/list?last=x,y&n=2>; rel="next"`, "/v2/a/tags/list?last=x,y&n=2"},
		// The token form, case-insensitive relation types, several in one rel.
		{`</p2>; rel=next`, "/p2"},
		{`</p2>; REL="Next"`, "/p2"},
		{`</p1>; rel="prev", </p3>; rel="last next"`, "/p3"},
		{`</p1>; title="rel=\"next\"", </p3>; rel="next"`, "/p3"},
		// Not a next link.
		{`</p1>; rel="prev"`, ""},
		{`</p1>; xrel="next"`, ""},
		{`</p1>; rel="nextpage"`, ""},
		{`</p1>; rel="prev"; rel="next"`, ""}, // only the first rel counts
		{`</p1>; title="; rel=\"next\""`, ""},
		{`</p1 rel="next"`, ""},
		{`/p1; rel="next"`, ""},
		{`</p1>; rel="next" junk`, ""},
		{``, ""},
	} {
		if got := linkNext(c.h); got != c.want {
			t.Errorf("linkNext(%q) = %q, want %q", c.h, got, c.want)
		}
	}
}

// linkRE is RFC 8288's Link grammar (§3, with RFC 9110's list rule and
// quoted-string), obs-text being any non-ASCII byte; linkValueRE takes
// one link-value of it apart.
var linkRE, linkValueRE, linkParamRE = func() (*regexp.Regexp, *regexp.Regexp, *regexp.Regexp) {
	const (
		token  = "[!#$%&'*+.^_`|~0-9A-Za-z-]+"
		quoted = `"(?:[\t !#-\[\]-~]|[^\x00-\x7f]|\\[\t -~]|\\[^\x00-\x7f])*"`
		param  = token + `[ \t]*(?:=[ \t]*(?:` + token + `|` + quoted + `))?`
		value  = `<[^>]*>(?:[ \t]*;[ \t]*` + param + `)*`
	)
	list := `(?:` + value + `)?(?:[ \t]*,[ \t]*(?:` + value + `)?)*`
	return regexp.MustCompile(`^[ \t]*` + list + `[ \t]*$`),
		regexp.MustCompile(`<([^>]*)>((?:[ \t]*;[ \t]*` + param + `)*)`),
		regexp.MustCompile(`;[ \t]*(` + token + `)[ \t]*(?:=[ \t]*(` + token + `|` + quoted + `))?`)
}()

// refLinkNext is linkNext as the grammar above reads it.
func refLinkNext(h string) string {
	if !linkRE.MatchString(h) {
		return ""
	}
	for _, v := range linkValueRE.FindAllStringSubmatch(h, -1) {
		for _, p := range linkParamRE.FindAllStringSubmatch(v[2], -1) {
			if !strings.EqualFold(p[1], "rel") {
				continue
			}
			rel := p[2]
			if strings.HasPrefix(rel, `"`) {
				rel = regexp.MustCompile(`\\(.)`).ReplaceAllString(rel[1:len(rel)-1], "$1")
			}
			if slices.ContainsFunc(strings.Split(rel, " "), func(r string) bool { return strings.EqualFold(r, "next") }) {
				return v[1]
			}
			break // only the first rel of a link counts
		}
	}
	return ""
}

// FuzzLinkNext: a remote's Link header leads to the page the RFC 8288
// reading of it names, and nowhere else: a malformed header, or one with
// no "next" relation, ends the listing. A header written by the grammar
// from a target, a rel and another parameter is read back to that target
// exactly when the rel says next.
func FuzzLinkNext(f *testing.F) {
	f.Add(`</v2/a/tags/list?last=b&n=1000>; rel="next"`, "/v2/a/tags/list?last=x,y", "prev next", "title", `a "b", c`)
	f.Fuzz(func(t *testing.T, h, target, rel, k, v string) {
		if got, want := linkNext(h), refLinkNext(h); got != want {
			t.Fatalf("linkNext(%q) = %q, want %q", h, got, want)
		}
		if strings.ContainsAny(target, "<>") || !isToken(k) || strings.EqualFold(k, "rel") ||
			strings.ContainsFunc(rel+v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return
		}
		q := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
		built := `</other>; rel="prev" ,<` + target + `> ;` + k + `="` + q.Replace(v) + `"; rel="` + q.Replace(rel) + `"`
		want := ""
		if slices.ContainsFunc(strings.Split(rel, " "), func(r string) bool { return strings.EqualFold(r, "next") }) {
			want = target
		}
		if got := linkNext(built); got != want {
			t.Fatalf("linkNext(%q) = %q, want %q", built, got, want)
		}
	})
}
