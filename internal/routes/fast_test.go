package routes_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/packreg/packreg/internal/routes"
)

// v2Rows are the /v2/ templates of registry.Routes, in its order, each
// row answering its name and variables.
func v2Rows() []routes.Route {
	var rows []routes.Route
	for _, r := range []struct{ method, path string }{
		{"GET", "/v2/{name:.+}/manifests/{ref:[^/]*}"},
		{"HEAD", "/v2/{name:.+}/manifests/{ref:[^/]*}"},
		{"PUT", "/v2/{name:.+}/manifests/{ref:[^/]*}"},
		{"DELETE", "/v2/{name:.+}/manifests/{ref:[^/]*}"},
		{"GET", "/v2/{name:.+}/blobs/{ref:[^/]*}"},
		{"HEAD", "/v2/{name:.+}/blobs/{ref:[^/]*}"},
		{"DELETE", "/v2/{name:.+}/blobs/{ref:[^/]*}"},
		{"POST", "/v2/{name:.+}/blobs/uploads/"},
		{"GET", "/v2/{name:.+}/blobs/uploads/{ref}"},
		{"PATCH", "/v2/{name:.+}/blobs/uploads/{ref}"},
		{"PUT", "/v2/{name:.+}/blobs/uploads/{ref}"},
		{"DELETE", "/v2/{name:.+}/blobs/uploads/{ref}"},
		{"GET", "/v2/{name:.+}/referrers/{ref:[^/]*}"},
		{"GET", "/v2/{name:.+}/tags/list"},
		{"GET", "/v2/_catalog"},
		{"GET", "/v2/"},
		{"HEAD", "/v2/"},
		{"GET", "/v2"},
		{"HEAD", "/v2"},
	} {
		rows = append(rows, routes.Route{Method: r.method, Path: r.path, Handler: echo(r.method + " " + r.path)})
	}
	return rows
}

// pair is the same rows served by mux (Register) and by Fast.
type pair struct{ mux, fast http.Handler }

func newPair(t testing.TB) pair {
	notFound := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(404) })
	notAllowed := func(allow string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Allow", allow)
			w.WriteHeader(405)
			w.Write([]byte(req.PathValue("name") + " " + req.PathValue("ref")))
		})
	}
	r := routes.NewRouter()
	routes.Register(r, notAllowed, v2Rows()...)
	r.NotFoundHandler = notFound
	f, err := routes.NewFast(notAllowed, v2Rows()...)
	if err != nil {
		t.Fatal(err)
	}
	fast := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if h, _, ok := f.Route(req); ok {
			h.ServeHTTP(w, req)
			return
		}
		notFound.ServeHTTP(w, req)
	})
	return pair{mux: r, fast: fast}
}

// same serves one request (a raw request URI: nothing cleaned) both ways
// and says how they differ.
func (p pair) same(method, target string) (string, bool) {
	ask := func(h http.Handler) string {
		req := httptest.NewRequest(method, "/", nil)
		req.RequestURI = target
		u, err := req.URL.Parse(target)
		if err != nil {
			return "unparsable"
		}
		req.URL = u
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return strings.Join([]string{http.StatusText(w.Code), w.Header().Get("Allow"), w.Body.String()}, "|")
	}
	m, f := ask(p.mux), ask(p.fast)
	return "mux " + m + ", fast " + f, m == f
}

// TestFastIsMux: Fast answers every path and method as the mux table of
// the same rows: names holding the routes' words, empty and trailing
// components, encoded slashes and dots, "..", the bare prefixes.
func TestFastIsMux(t *testing.T) {
	p := newPair(t)
	names := []string{"", "a", "a/b", "blobs", "manifests", "uploads", "blobs/uploads", "tags", "tags/list", "referrers",
		"_catalog", "a%2Fb", "..", "a/../b", "%2e%2e", "a/", "/a", "A", "a%2", "x/manifests/y"}
	tails := []string{"", "/", "/blobs", "/blobs/", "/blobs/x", "/blobs/sha256:ab", "/blobs/x/", "/blobs/uploads", "/blobs/uploads/",
		"/blobs/uploads/u", "/blobs/uploads/u/", "/blobs/uploads/a%2Fb", "/manifests/", "/manifests/t", "/manifests/v1%2Fx",
		"/manifests/t/", "/tags/list", "/tags/list/", "/tags/", "/referrers/", "/referrers/d", "/referrers/d/x", "//manifests/t"}
	var targets []string
	for _, n := range names {
		for _, tl := range tails {
			targets = append(targets, "/v2/"+n+tl)
		}
	}
	targets = append(targets, "/v2", "/v2/", "/v2//", "/v2/_catalog", "/v2/_catalog/", "/v2x", "/v3/a/manifests/t", "/",
		"/v2/a/tags/listx", "/v2/a/manifests", "/v2/manifests/t", "/v2//manifests/t", "/v2/blobs/uploads/", "/v2///tags/list")
	for _, target := range targets {
		for _, m := range []string{"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"} {
			if diff, ok := p.same(m, target); !ok {
				t.Errorf("%s %s: %s", m, target, diff)
			}
		}
	}
}

// TestFastShapes: a template Fast cannot match exactly is refused, so its
// batch keeps mux's regexps.
func TestFastShapes(t *testing.T) {
	for _, tpl := range []string{"/v2/{name}/x", "/v2/{name:.+}/runs/{ref:[0-9]{1,3}}", "/a/{id}/b", "/v2/{name:.+}/x{ref}", "/v2/{name:.+}/a/{ref}/b", "/v2/{name:.+}"} {
		if _, err := routes.NewFast(nil, routes.Get(tpl, echo("x"))); err == nil {
			t.Errorf("%s: compiled", tpl)
		}
	}
	for _, tpl := range []string{"/v2/", "/v2/{name:.+}/tags/list", "/v2/{name:.+}/blobs/{ref}", "/v2/{name:.+}/blobs/{ref:[^/]+}"} {
		if _, err := routes.NewFast(func(string) http.Handler { return nil }, routes.Get(tpl, echo("x"))); err != nil {
			t.Errorf("%s: %v", tpl, err)
		}
	}
}

// FuzzFastIsMux: any path, both tables, one answer.
func FuzzFastIsMux(f *testing.F) {
	for _, s := range []string{"/v2/a/manifests/t", "/v2/a/blobs/uploads/u", "/v2/a%2Fb/tags/list", "/v2//blobs/", "/v2/_catalog"} {
		f.Add("GET", s)
	}
	p := newPair(f)
	f.Fuzz(func(t *testing.T, method, target string) {
		switch method {
		case "GET", "HEAD", "PUT", "POST", "PATCH", "DELETE":
		default:
			method = "GET"
		}
		if !strings.HasPrefix(target, "/") {
			return
		}
		if diff, ok := p.same(method, target); !ok {
			t.Errorf("%s %q: %s", method, target, diff)
		}
	})
}
