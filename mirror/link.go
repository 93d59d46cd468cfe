package mirror

import (
	"slices"
	"strings"
)

// linkNext returns the target of the first link a listing page's Link
// header names "next" (RFC 8288: `<url>; rel="next"`; a comma may sit in
// the url, rel may be a token, and holds space-separated relation types,
// case-insensitive). A header that does not follow the grammar has no
// next page: a target cut out of a malformed one would be a guess.
func linkNext(h string) string {
	p := headerParser{s: h}
	next := ""
	for p.sep(); !p.eof(); {
		target, isNext, ok := p.link()
		if !ok || !p.sep() && !p.eof() {
			return ""
		}
		if isNext && next == "" {
			next = target
		}
	}
	return next
}

// link reads "<" URI-Reference ">" *( OWS ";" OWS link-param ) and
// reports whether its rel names "next"; only the first rel counts.
func (p *headerParser) link() (target string, next, ok bool) {
	end := strings.IndexByte(p.s[p.i:], '>')
	if p.peek() != '<' || end < 0 {
		return "", false, false
	}
	target, p.i = p.s[p.i+1:p.i+end], p.i+end+1
	rel := false
	for {
		p.ows()
		if p.peek() != ';' {
			return target, next, true
		}
		p.i++
		p.ows()
		k, v, ok, malformed := p.param()
		switch {
		case malformed:
			return "", false, false
		case !ok && p.span(isTchar) == "": // a parameter may have no value
			return "", false, false
		case ok && k == "rel" && !rel:
			rel = true
			next = slices.ContainsFunc(strings.Split(v, " "), func(r string) bool { return strings.EqualFold(r, "next") })
		}
	}
}
