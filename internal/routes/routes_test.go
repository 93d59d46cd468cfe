package routes_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/gorilla/mux"
	"github.com/packreg/packreg/internal/depcheck"
	"github.com/packreg/packreg/internal/routes"
)

// echo answers the row's name and its path values.
func echo(row string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.WriteString(w, row+" "+req.PathValue("name")+" "+req.PathValue("ref"))
	})
}

func TestRouter(t *testing.T) {
	notFound := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "no route")
	})
	notAllowed := func(allow string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", allow)
			w.WriteHeader(http.StatusMethodNotAllowed)
		})
	}
	h := routes.Handler(notFound, notAllowed,
		routes.Get("/v2/{name:.+}/blobs/uploads/{ref}", echo("upload")),
		routes.Get("/v2/{name:.+}/blobs/{ref:[^/]*}", echo("blob")),
		routes.Head("/v2/{name:.+}/blobs/{ref:[^/]*}", echo("blob")),
		routes.Get("/v2/{name:.+}/runs/{ref:[0-9]{1,3}}", echo("run")),
		routes.Get("/v2/", echo("base")),
	)
	for _, tc := range []struct {
		method, target string
		status         int
		body, allow    string
	}{
		{"GET", "/v2/a/b/blobs/sha256:x", 200, "blob a/b sha256:x", ""},
		{"GET", "/v2/a/blobs/b/blobs/x", 200, "blob a/blobs/b x", ""},
		{"GET", "/v2/a/blobs/uploads/u1", 200, "upload a u1", ""},
		{"GET", "/v2/a/blobs/", 200, "blob a ", ""},
		{"GET", "/v2/%61/b/blobs/sha256%3Ax", 200, "blob a/b sha256:x", ""}, // matched escaped, handed unescaped
		{"GET", "/v2/a%2Fb/blobs/v1%2fx", 200, "blob a%2Fb v1%2fx", ""},     // but for an encoded slash: no separator
		{"GET", "/v2/a/../b/blobs/x", 200, "blob a/../b x", ""},             // never cleaned: the handler refuses it
		{"GET", "/v2//a/blobs/x", 200, "blob /a x", ""},
		{"GET", "/v2/a/runs/12", 200, "run a 12", ""},
		{"GET", "/v2/a/runs/1234", 404, "no route", ""},
		{"GET", "/v2/", 200, "base  ", ""},
		{"GET", "/v2", 404, "no route", ""},
		{"GET", "/v2/a/manifests/x", 404, "no route", ""},
		{"PUT", "/v2/a/blobs/x", 405, "", "GET, HEAD"},
		{"DELETE", "/v2/a/blobs/uploads/u1", 405, "", "GET"},
		{"POST", "/v2/", 405, "", "GET"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.target, nil))
		if w.Code != tc.status || tc.body != "" && w.Body.String() != tc.body || w.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %q Allow %q, want %d %q Allow %q", tc.method, tc.target, w.Code, w.Body, w.Header().Get("Allow"), tc.status, tc.body, tc.allow)
		}
		if w.Header().Get("Location") != "" {
			t.Errorf("%s %s: redirected to %s", tc.method, tc.target, w.Header().Get("Location"))
		}
	}
}

// TestMethods: Walk tells the table's rows (with their method) from the
// rows Register adds for other methods.
func TestMethods(t *testing.T) {
	r := routes.NewRouter()
	routes.Register(r, func(string) http.Handler { return http.NotFoundHandler() },
		routes.Get("/a", echo("a")), routes.Post("/a", echo("a")), routes.Delete("/b/{id}", echo("b")))
	var got []string
	err := r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, _ := route.GetPathTemplate()
		for _, m := range routes.Methods(route) {
			got = append(got, m+" "+tpl)
		}
		return nil
	})
	if want := []string{"GET /a", "POST /a", "DELETE /b/{id}"}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("walk: %v %v, want %v", got, err, want)
	}
}

func TestDependencies(t *testing.T) {
	depcheck.Allow(t, ".", "github.com/gorilla/mux")
}

func TestStripPatterns(t *testing.T) {
	for tpl, want := range map[string]string{
		"/v2/":                                  "/v2/",
		"/v2/{name:.+}/blobs/{ref:[^/]*}":       "/v2/{name}/blobs/{ref}",
		"/api/v1/keys/{id}":                     "/api/v1/keys/{id}",
		"/x/{n:[0-9]{1,3}}/y":                   "/x/{n}/y",
		"/api/v1/packs/{name:.+}/versions/{v}/": "/api/v1/packs/{name}/versions/{v}/",
	} {
		if got := routes.StripPatterns(tpl); got != want {
			t.Errorf("StripPatterns(%q) = %q, want %q", tpl, got, want)
		}
	}
}
