package routes

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Fast matches a batch of rows whose templates have the /v2/ API's shapes
// without regexps and without copying the request: a literal path
// ("/v2/_catalog"), or a literal prefix, a {name:.+}, a literal, and
// optionally a last variable that is one path component ({ref},
// {ref:[^/]+} or {ref:[^/]*}). Such a template is matched from the end:
// the last variable is what follows the last slash, the literal must end
// there, and the name is what is left between prefix and literal, so the
// answer is the one the template's regexp gives. Register still puts the
// same rows on the mux router (Walk, OpenAPI, and the paths Fast leaves).
type Fast struct {
	rows  []fastRow
	paths []fastPath // the batch's templates in order of first appearance, for 405s
}

type fastRow struct {
	method  string
	shape   shape
	handler http.Handler
	label   string // the template without its patterns
}

type fastPath struct {
	shape   shape
	handler http.Handler // the 405 with the path's Allow
	label   string
}

// shape is a template compiled for matching from the end.
type shape struct {
	prefix  string // literal before {name}, or the whole template when it has no variable
	name    string // the first variable's name; "" for a literal template
	literal string // between {name} and the last variable, or the end
	ref     string // the last variable's name; "" if the template ends with literal
	refOpt  bool   // the last variable may be empty ([^/]*)
}

// NewFast compiles rows as Register would register them (the first row
// that matches wins; a path's other methods answer notAllowed). It fails
// on a template whose shape it cannot match exactly: the caller then
// keeps mux for the batch.
func NewFast(notAllowed NotAllowed, rows ...Route) (*Fast, error) {
	f := &Fast{}
	var allow [][]string
	for _, row := range rows {
		s, err := compile(row.Path)
		if err != nil {
			return nil, err
		}
		label := StripPatterns(row.Path)
		f.rows = append(f.rows, fastRow{method: row.Method, shape: s, handler: row.Handler, label: label})
		i := slices.IndexFunc(f.paths, func(p fastPath) bool { return p.shape == s })
		if i < 0 {
			f.paths = append(f.paths, fastPath{shape: s, label: label})
			allow = append(allow, nil)
			i = len(f.paths) - 1
		}
		allow[i] = append(allow[i], row.Method)
	}
	for i := range f.paths {
		f.paths[i].handler = notAllowed(strings.Join(allow[i], ", "))
	}
	return f, nil
}

// Route finds the row for req: its handler (the 405 of the path when no
// row has the method) and its label (the template without patterns), with
// the path's variables set on req (PathValue, unescaped). ok is false when
// no template of the batch matches the path.
func (f *Fast) Route(req *http.Request) (h http.Handler, label string, ok bool) {
	p := req.URL.EscapedPath()
	matched := -1 // the first path (in f.paths order) that matched
	for i := range f.rows {
		row := &f.rows[i]
		name, ref, hit := row.shape.match(p)
		if !hit {
			continue
		}
		if row.method == req.Method {
			row.shape.set(req, name, ref)
			return row.handler, row.label, true
		}
		if matched < 0 {
			matched = i
		}
	}
	if matched < 0 {
		return nil, "", false
	}
	// Some row's path matched but not its method: the 405 of the first
	// path that matches, as Register's rows after the batch answer.
	for i := range f.paths {
		fp := &f.paths[i]
		if name, ref, hit := fp.shape.match(p); hit {
			fp.shape.set(req, name, ref)
			return fp.handler, fp.label, true
		}
	}
	return nil, "", false // unreachable: the row's path is among f.paths
}

// compile reads a template of one of Fast's shapes.
func compile(tpl string) (shape, error) {
	open := strings.IndexByte(tpl, '{')
	if open < 0 {
		return shape{prefix: tpl}, nil
	}
	bad := fmt.Errorf("routes: template %q is not a shape Fast matches", tpl)
	s := shape{prefix: tpl[:open]}
	end := strings.IndexByte(tpl[open:], '}')
	if end < 0 {
		return shape{}, bad
	}
	name, pattern, _ := strings.Cut(tpl[open+1:open+end], ":")
	if pattern != ".+" || name == "" {
		return shape{}, bad
	}
	s.name = name
	rest := tpl[open+end+1:]
	open = strings.IndexByte(rest, '{')
	if open < 0 {
		s.literal = rest
		if s.literal == "" {
			return shape{}, bad
		}
		return s, nil
	}
	s.literal = rest[:open]
	if !strings.HasSuffix(s.literal, "/") || !strings.HasSuffix(rest, "}") {
		return shape{}, bad // the last variable must be a whole last component
	}
	ref, pattern, _ := strings.Cut(rest[open+1:len(rest)-1], ":")
	switch pattern {
	case "", "[^/]+":
	case "[^/]*":
		s.refOpt = true
	default:
		return shape{}, bad
	}
	if ref == "" || strings.ContainsAny(ref, "{}") {
		return shape{}, bad
	}
	s.ref = ref
	return s, nil
}

// match reports whether the escaped path p has the shape, and the raw
// (still escaped) values of its variables.
func (s *shape) match(p string) (name, ref string, ok bool) {
	if s.name == "" {
		return "", "", p == s.prefix
	}
	if !strings.HasPrefix(p, s.prefix) {
		return "", "", false
	}
	head := p
	if s.ref != "" {
		i := strings.LastIndexByte(p, '/')
		ref = p[i+1:] // i >= 0: the prefix has a slash
		if ref == "" && !s.refOpt {
			return "", "", false
		}
		head = p[:i+1]
	}
	// .+ needs one byte at least between prefix and literal. A
	// newline is the one byte "." does not match; an escaped path
	// has none.
	if len(head) < len(s.prefix)+1+len(s.literal) || !strings.HasSuffix(head, s.literal) {
		return "", "", false
	}
	return head[len(s.prefix) : len(head)-len(s.literal)], ref, true
}

// set hands the variables to the handler as withPathValues does.
func (s *shape) set(req *http.Request, name, ref string) {
	if s.name != "" {
		req.SetPathValue(s.name, unescape(name))
	}
	if s.ref != "" {
		req.SetPathValue(s.ref, unescape(ref))
	}
}

// unescape is a path variable's value as handlers see it: unescaped,
// except that a value with an encoded slash is left as sent. "/" is the
// path's one separator, and "%2F" is not one (RFC 3986 §2.2): unescaped,
// "a%2Fb" would name repository a/b, which a proxy routing or refusing by
// path segments never saw. Left as sent, every name check refuses it.
func unescape(v string) string {
	i := strings.IndexByte(v, '%')
	if i < 0 {
		return v
	}
	if strings.Contains(v[i:], "%2F") || strings.Contains(v[i:], "%2f") {
		return v
	}
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}
