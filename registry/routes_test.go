package registry_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/packreg/packreg/internal/routes"
	"github.com/packreg/packreg/oci"
)

// TestRoutesNamesWithResourceWords: repository names contain slashes and
// may contain the words the routes use (blobs, manifests, uploads, tags,
// referrers); every route matches from the end, so each of these names is
// one repository and each path reaches the resource it ends with.
func TestRoutesNamesWithResourceWords(t *testing.T) {
	h := newRegistry(t)
	names := []string{"a/blobs/b", "m/manifests/x", "u/blobs/uploads/v", "t/tags/list", "r/referrers/s", "blobs", "manifests/blobs"}
	for _, repo := range names {
		m := imageManifest(t, h, repo, []byte("layer of "+repo))
		expect(t, putManifest(t, h, repo, "v1", m, oci.MediaTypeImageManifest), 201, "")
		w := do(t, h, "GET", "/v2/"+repo+"/manifests/v1", nil)
		expect(t, w, 200, "")
		if w.Body.String() != string(m) {
			t.Fatalf("%s: manifest %s", repo, w.Body)
		}
		expect(t, do(t, h, "GET", "/v2/"+repo+"/blobs/"+sha([]byte("layer of "+repo)).String(), nil), 200, "")
		expect(t, do(t, h, "GET", "/v2/"+repo+"/referrers/"+sha(m).String(), nil), 200, "")
		w = do(t, h, "GET", "/v2/"+repo+"/tags/list", nil)
		expect(t, w, 200, "")
		var tags struct {
			Name string
			Tags []string
		}
		if json.Unmarshal(w.Body.Bytes(), &tags) != nil || tags.Name != repo || strings.Join(tags.Tags, ",") != "v1" {
			t.Fatalf("%s: tags %s", repo, w.Body)
		}
	}
	// The prefixes of those names hold nothing of theirs.
	for _, repo := range []string{"a", "m", "u", "u/blobs", "t", "r"} {
		expect(t, do(t, h, "GET", "/v2/"+repo+"/manifests/v1", nil), 404, "MANIFEST_UNKNOWN")
	}
	w := do(t, h, "GET", "/v2/_catalog", nil)
	var cat struct{ Repositories []string }
	if json.Unmarshal(w.Body.Bytes(), &cat) != nil || len(cat.Repositories) != len(names) {
		t.Fatalf("catalog %s, want %d repositories", w.Body, len(names))
	}
}

// TestRoutesMethods: a method a path does not have is 405 UNSUPPORTED with
// Allow, after the name is checked like on any route of the path.
func TestRoutesMethods(t *testing.T) {
	h := newRegistry(t)
	for _, tc := range []struct {
		method, path, allow string
	}{
		{"POST", "/v2/a/manifests/latest", "GET, HEAD, PUT, DELETE"},
		{"PATCH", "/v2/a/blobs/sha256:" + strings.Repeat("a", 64), "GET, HEAD, DELETE"},
		{"GET", "/v2/a/blobs/uploads/", "POST"},
		{"POST", "/v2/a/tags/list", "GET"},
		{"PUT", "/v2/_catalog", "GET"},
		{"DELETE", "/v2/", "GET, HEAD"},
	} {
		w := do(t, h, tc.method, tc.path, nil)
		expect(t, w, http.StatusMethodNotAllowed, "UNSUPPORTED")
		expectAllow(t, w, tc.method+" "+tc.path, tc.allow)
	}
	expect(t, do(t, h, "POST", "/v2/A/manifests/latest", nil), 400, "NAME_INVALID")
	expect(t, do(t, h, "POST", "/v2/a/../b/manifests/latest", nil), 400, "NAME_INVALID")
}

// TestRoutesEdges: the paths at the edges of the route shapes, with raw
// request paths (nothing cleaned): trailing slashes, empty last
// components, names made of the routes' words, encoded slashes and dots.
// Each answers as the gorilla/mux templates did before the /v2/ rows
// were matched from the end by hand (routes.Fast).
func TestRoutesEdges(t *testing.T) {
	h := newRegistry(t)
	m := imageManifest(t, h, "manifests", []byte("layer"))
	expect(t, putManifest(t, h, "manifests", "t", m, oci.MediaTypeImageManifest), 201, "")
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/v2/manifests/manifests/t", 200, "", ""},
		{"GET", "/v2/manifests/manifests/t/", 404, "NAME_UNKNOWN", ""},
		{"GET", "/v2/manifests/tags/list/", 404, "NAME_UNKNOWN", ""},
		{"GET", "/v2/manifests/manifests/", 400, "DIGEST_INVALID", ""},
		{"GET", "/v2/manifests/blobs/", 400, "DIGEST_INVALID", ""},
		{"GET", "/v2/manifests/referrers/", 400, "DIGEST_INVALID", ""},
		{"GET", "/v2/manifests/manifests/t%2F", 400, "DIGEST_INVALID", ""},
		{"GET", "/v2/manifests%2Fmanifests/manifests/t", 400, "NAME_INVALID", ""}, // an encoded slash stays in the name
		{"POST", "/v2/a/blobs/uploads", 405, "UNSUPPORTED", "GET, HEAD, DELETE"},
		{"PATCH", "/v2/a/blobs/uploads/", 405, "UNSUPPORTED", "POST"},
		{"GET", "/v2/blobs/uploads/", 404, "NAME_UNKNOWN", ""},
		{"GET", "/v2/manifests/t", 404, "NAME_UNKNOWN", ""},
		{"GET", "/v2//manifests/t", 404, "NAME_UNKNOWN", ""}, // .+ needs a byte before "/manifests/"
		{"GET", "/v2/a/blobs/uploads/%2E%2E", 400, "NAME_INVALID", ""},
		{"GET", "/v2/a/blobs/uploads/..%2Fx", 404, "BLOB_UPLOAD_UNKNOWN", ""},
		{"DELETE", "/v2/_catalog", 405, "UNSUPPORTED", "GET"},
		{"GET", "/v2/_catalog/", 404, "NAME_UNKNOWN", ""},
		{"GET", "/v2/_catalog/tags/list", 400, "NAME_INVALID", ""},
		{"PUT", "/v2", 405, "UNSUPPORTED", "GET, HEAD"},
	} {
		w := do(t, h, tc.method, tc.path, nil)
		expect(t, w, tc.status, tc.code)
		expectAllow(t, w, tc.method+" "+tc.path, tc.allow)
	}
}

// expectAllow checks the Allow header of an answer ("" for none).
func expectAllow(t *testing.T, w *httptest.ResponseRecorder, what, want string) {
	t.Helper()
	if got := w.Header().Get("Allow"); got != want {
		t.Errorf("%s: Allow %q, want %q", what, got, want)
	}
}

// TestRoutesAreFast: every /v2/ row has a shape routes.Fast matches, so
// no request pays for mux's regexps (a row that did not would send the
// whole table back to them, silently but for a log line).
func TestRoutesAreFast(t *testing.T) {
	r := newRegistry(t)
	if _, err := routes.NewFast(r.NotAllowed, r.Routes()...); err != nil {
		t.Fatal(err)
	}
}
