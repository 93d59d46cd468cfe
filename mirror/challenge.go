package mirror

import "strings"

// parseChallenge reads the first challenge of a WWW-Authenticate header,
// `Bearer realm="...",service="...",scope="..."`: the scheme and parameter
// names lowercased, quoted values unescaped. A header that does not follow
// RFC 9110's grammar (§11.6.1) yields no scheme and no parameters: a realm
// guessed out of a malformed header would be where the token request goes.
func parseChallenge(h string) (scheme string, params map[string]string) {
	p := headerParser{s: h}
	var first *challenge
	p.sep()
	for !p.eof() {
		c, ok := p.challenge()
		if !ok {
			return "", map[string]string{}
		}
		if first == nil {
			first = &c
		}
	}
	if first == nil {
		return "", map[string]string{}
	}
	return first.scheme, first.params
}

type challenge struct {
	scheme string
	params map[string]string
}

// headerParser walks a header value; every method leaves i where it was
// when what it looks for is not there.
type headerParser struct {
	s string
	i int
}

func (p *headerParser) eof() bool { return p.i >= len(p.s) }

func (p *headerParser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}

func (p *headerParser) ows() {
	for p.peek() == ' ' || p.peek() == '\t' {
		p.i++
	}
}

// sep skips OWS and empty list elements, and reports whether it passed a
// comma.
func (p *headerParser) sep() bool {
	p.ows()
	comma := false
	for p.peek() == ',' {
		comma = true
		p.i++
		p.ows()
	}
	return comma
}

func (p *headerParser) span(ok func(byte) bool) string {
	j := p.i
	for !p.eof() && ok(p.s[p.i]) {
		p.i++
	}
	return p.s[j:p.i]
}

// challenge reads auth-scheme [ 1*SP ( token68 / #auth-param ) ] and the
// separator after it.
func (p *headerParser) challenge() (challenge, bool) {
	c := challenge{scheme: strings.ToLower(p.span(isTchar)), params: map[string]string{}}
	if c.scheme == "" {
		return c, false
	}
	if p.span(func(b byte) bool { return b == ' ' }) == "" || p.token68() {
		return c, p.sep() || p.eof()
	}
	// #auth-param: names and values separated by commas, empty elements
	// allowed; after a comma, a name without "=" starts the next challenge.
	at := p.i
	afterComma := p.sep()
	if !afterComma && p.i != at {
		return c, false // only SP parts a scheme from its first parameter
	}
	for {
		k, v, ok, malformed := p.param()
		if malformed {
			return c, false
		}
		if !ok {
			return c, afterComma || p.eof()
		}
		if _, dup := c.params[k]; dup {
			return c, false // RFC 9110: each name at most once
		}
		c.params[k] = v
		if afterComma = p.sep(); !afterComma {
			return c, p.eof()
		}
	}
}

// token68 reads a token68 credential that ends the challenge.
func (p *headerParser) token68() bool {
	j := p.i
	t := p.span(isToken68)
	p.span(func(b byte) bool { return b == '=' })
	p.ows()
	if t != "" && (p.eof() || p.peek() == ',') {
		return true
	}
	p.i = j
	return false
}

// param reads token BWS "=" BWS ( token / quoted-string ). ok is false when
// there is no "name =" here; malformed when its value is broken.
func (p *headerParser) param() (k, v string, ok, malformed bool) {
	j := p.i
	k = strings.ToLower(p.span(isTchar))
	p.ows()
	if k == "" || p.peek() != '=' {
		p.i = j
		return "", "", false, false
	}
	p.i++
	p.ows()
	if p.peek() != '"' {
		v = p.span(isTchar)
		return k, v, v != "", v == ""
	}
	var b strings.Builder
	for p.i++; !p.eof(); p.i++ {
		switch c := p.s[p.i]; {
		case c == '"':
			p.i++
			return k, b.String(), true, false
		case c == '\\' && p.i+1 < len(p.s) && isQuotable(p.s[p.i+1]):
			p.i++
			b.WriteByte(p.s[p.i])
		case c != '\\' && isQuotable(c):
			b.WriteByte(c)
		default:
			return "", "", false, true
		}
	}
	return "", "", false, true // unterminated
}

// isTchar: RFC 9110 token characters.
func isTchar(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

func isToken68(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("-._~+/", b) >= 0
}

// isQuotable: what a quoted-string holds, escaped or not (HTAB, SP,
// visible ASCII, obs-text); never a control character.
func isQuotable(b byte) bool { return b == '\t' || b >= ' ' && b != 0x7f }
