package routes

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"
)

// Route is one row of the route table.
type Route struct {
	// Method is the one method the row answers; HEAD is a row of its own.
	Method string
	// Path is a gorilla/mux template matched against the escaped path:
	// "/v2/{name:.+}/blobs/{ref:[^/]*}". A variable without a pattern is
	// one non-empty path component.
	Path    string
	Handler http.Handler
	// Access is what the row asks of its caller; the zero value is
	// AdminOnly, so a row that declares nothing is closed to all but the
	// admins when authentication is on.
	Access Access
}

// Access is the right a row needs. cmd/packreg's auth gate reads it
// before the handler runs (only when authentication is configured).
type Access int

const (
	// AdminOnly: the admin API (keys, mirrors, robots, audit...).
	AdminOnly Access = iota
	// Public: no check at all (health, the token endpoint, openapi).
	Public
	// AnyCaller: anonymous callers too; the handler shows only what the
	// caller may pull (catalog, listings) or checks the right itself once
	// it knows the repository (publish: push on the body's name).
	AnyCaller
	// Authenticated: any identity, never anonymous (GET /v2/).
	Authenticated
	// CanPull, CanPush, CanDelete, CanLifecycle: that action on the
	// repository in the row's {name} path variable.
	CanPull
	CanPush
	CanDelete
	CanLifecycle
)

// Action is the repository action of CanPull..CanLifecycle, or "".
func (a Access) Action() string {
	switch a {
	case CanPull:
		return "pull"
	case CanPush:
		return "push"
	case CanDelete:
		return "delete"
	case CanLifecycle:
		return "lifecycle"
	}
	return ""
}

func (a Access) String() string {
	switch a {
	case AdminOnly:
		return "admin"
	case Public:
		return "public"
	case AnyCaller:
		return "any caller"
	case Authenticated:
		return "authenticated"
	}
	return a.Action()
}

// With returns the row with its access declared:
// routes.Get("/v2/{name:.+}/tags/list", h).With(routes.CanPull).
func (r Route) With(a Access) Route {
	r.Access = a
	return r
}

// Guard wraps each row's handler with guard(row): the auth gate.
func Guard(rows []Route, guard func(Route) http.Handler) []Route {
	out := make([]Route, len(rows))
	for i, row := range rows {
		row.Handler = guard(row)
		out[i] = row
	}
	return out
}

// NotAllowed makes the answer to a method no row of a path has; allow
// lists the methods the path has, as the Allow header writes them.
type NotAllowed func(allow string) http.Handler

// NewRouter returns an empty router with packreg's matching rules: paths
// as sent, never cleaned or redirected, matched escaped.
func NewRouter() *mux.Router {
	return mux.NewRouter().SkipClean(true).UseEncodedPath()
}

// Register adds rows to r in their order (the first row that matches
// wins, so a more specific template comes first), then, per path, a row
// for every other method answered by notAllowed.
func Register(r *mux.Router, notAllowed NotAllowed, rows ...Route) {
	var paths []string
	allow := map[string][]string{}
	for _, row := range rows {
		// The literal check first: mux stops at the first matcher that
		// fails (but for Methods), so a row's regexp runs only on paths
		// that have its literals.
		r.NewRoute().MatcherFunc(literals(row.Path)).Path(row.Path).Methods(row.Method).Handler(withPathValues(row.Handler))
		if !slices.Contains(paths, row.Path) {
			paths = append(paths, row.Path)
		}
		allow[row.Path] = append(allow[row.Path], row.Method)
	}
	for _, p := range paths {
		// No Methods: Walk tells these rows from the table's by that.
		r.NewRoute().MatcherFunc(literals(p)).Path(p).Handler(withPathValues(notAllowed(strings.Join(allow[p], ", "))))
	}
}

// Handler serves rows alone, as Register and NewRouter do, with notFound
// for paths no row matches: a package's own handler for tests and for a
// server that mounts one API only. When every row has a shape Fast
// matches, Fast serves them (no mux, no regexp).
func Handler(notFound http.Handler, notAllowed NotAllowed, rows ...Route) http.Handler {
	f, err := NewFast(notAllowed, rows...)
	if err != nil { // a template Fast cannot match: mux's regexps
		r := NewRouter()
		Register(r, notAllowed, rows...)
		r.NotFoundHandler = notFound
		return r
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if h, _, ok := f.Route(req); ok {
			h.ServeHTTP(w, req)
			return
		}
		notFound.ServeHTTP(w, req) // no row's path: mux would say the same
	})
}

// Methods returns the methods of a row, or none for the rows Register adds
// for other methods.
func Methods(r *mux.Route) []string {
	m, err := r.GetMethods()
	if err != nil {
		return nil
	}
	return m
}

// literals is a cheap first test of a template: the path starts with its
// text before the first variable, ends with its text after the last, and
// has every text between. A Go regexp with a ".+" costs about a
// microsecond even when it fails; this check, tens of nanoseconds.
func literals(template string) mux.MatcherFunc {
	var parts []string
	rest := template
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			parts = append(parts, rest)
			break
		}
		parts = append(parts, rest[:i])
		// Patterns may nest braces ({ref:[0-9]{1,3}}): find the close
		// that balances the open.
		depth, j := 0, i
		for ; j < len(rest); j++ {
			if rest[j] == '{' {
				depth++
			} else if rest[j] == '}' {
				if depth--; depth == 0 {
					break
				}
			}
		}
		rest = rest[min(j+1, len(rest)):]
	}
	first, last := parts[0], parts[len(parts)-1]
	if len(parts) == 1 {
		return func(req *http.Request, _ *mux.RouteMatch) bool { return req.URL.EscapedPath() == first }
	}
	middle := parts[1 : len(parts)-1]
	return func(req *http.Request, _ *mux.RouteMatch) bool {
		p := req.URL.EscapedPath()
		if !strings.HasPrefix(p, first) || !strings.HasSuffix(p, last) {
			return false
		}
		for _, m := range middle {
			if !strings.Contains(p, m) {
				return false
			}
		}
		return true
	}
}

// withPathValues hands the template's variables to h as req.PathValue,
// unescaped (a value that does not unescape, or holds an encoded slash, is
// left as sent; every check of a name or reference refuses a "%").
func withPathValues(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		for k, v := range mux.Vars(req) {
			req.SetPathValue(k, unescape(v))
		}
		h.ServeHTTP(w, req)
	})
}

// StripPatterns drops the patterns of a template's variables:
// "/v2/{name:.+}/blobs/{ref:[^/]*}" is "/v2/{name}/blobs/{ref}", the
// template as OpenAPI writes it and the metrics' route label.
func StripPatterns(tpl string) string {
	var b strings.Builder
	depth := 0
	skipping := false
	for i := 0; i < len(tpl); i++ {
		c := tpl[i]
		switch {
		case c == '{':
			depth++
			if depth == 1 {
				b.WriteByte(c)
				continue
			}
		case c == '}':
			depth--
			if depth == 0 {
				skipping = false
				b.WriteByte(c)
				continue
			}
		case c == ':' && depth == 1:
			skipping = true
		}
		if !skipping {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// One constructor per method, so a table reads as rows:
// routes.Get("/api/v1/keys", h).
func Get(path string, h http.Handler) Route {
	return Route{Method: http.MethodGet, Path: path, Handler: h}
}
func Head(path string, h http.Handler) Route {
	return Route{Method: http.MethodHead, Path: path, Handler: h}
}
func Put(path string, h http.Handler) Route {
	return Route{Method: http.MethodPut, Path: path, Handler: h}
}
func Post(path string, h http.Handler) Route {
	return Route{Method: http.MethodPost, Path: path, Handler: h}
}
func Patch(path string, h http.Handler) Route {
	return Route{Method: http.MethodPatch, Path: path, Handler: h}
}
func Delete(path string, h http.Handler) Route {
	return Route{Method: http.MethodDelete, Path: path, Handler: h}
}
