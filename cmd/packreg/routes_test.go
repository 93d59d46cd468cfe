package main

import (
	"strings"
	"testing"
)

// TestVersionRoutes: the signatures, attestations and verification of a
// pack version are attest's rows below the pack API's path; the name and
// version are checked as on the pack API's own rows, and names may hold the
// words of the path.
func TestVersionRoutes(t *testing.T) {
	h := edgeApp(t, nil)
	form, formType := publishForm("acme/versions/rules", "1.0.0", []byte("rules: []\n"))
	want(t, send(h, "POST", "/api/v1/packs", form, "Content-Type", formType), 201, "", "publish")
	base := "/api/v1/packs/acme/versions/rules/versions/"
	for _, tc := range []struct {
		method, target string
		status         int
		code           string
	}{
		{"GET", base + "1.0.0/verification", 200, ""},
		{"GET", base + "1.0.0/signatures", 200, ""},
		{"GET", base + "1.0.0/attestations", 200, ""},
		{"POST", base + "1.0.0/verification", 200, ""},
		{"POST", base + "1.0.0/signatures", 400, "INVALID"}, // reached attest, which refused the body
		{"GET", base + "v1/signatures", 400, "VERSION_INVALID"},
		{"GET", base + "2.0.0/signatures", 404, "NOT_FOUND"},
		{"GET", "/api/v1/packs/Acme/versions/1.0.0/signatures", 400, "NAME_INVALID"},
		{"GET", base + "1.0.0/sbom", 404, "NOT_FOUND"},
		{"DELETE", base + "1.0.0/signatures", 405, "METHOD_NOT_ALLOWED"},
		{"GET", base + "1.0.0", 200, ""},
		{"GET", base + "1.0.0/manifest", 200, ""},
		{"GET", base + "1.0.0/lifecycle", 200, ""},
		{"GET", "/api/v1/packs/acme/versions/rules/versions", 200, ""},
		// A pack named ".../versions/x" has a lifecycle of its own.
		{"GET", base + "x/lifecycle", 404, "NOT_FOUND"},
	} {
		w := send(h, tc.method, tc.target, []byte(`{}`), "Content-Type", "application/json")
		want(t, w, tc.status, tc.code, tc.method+" "+tc.target)
		if tc.status == 405 && w.Header().Get("Allow") != "GET, POST" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.target, w.Header().Get("Allow"))
		}
	}
}

// TestRouteShapes: a path or method the table does not have is answered
// in the shape of its prefix; a path longer than any route's is refused
// before it is matched.
func TestRouteShapes(t *testing.T) {
	h := edgeApp(t, nil)
	long := strings.Repeat("a/", 32<<10)
	for _, tc := range []struct {
		method, target string
		status         int
		code           string
	}{
		{"GET", "/api/v1/nothing", 404, "NOT_FOUND"},
		{"GET", "/api/v1/packs/acme/rules", 404, "NOT_FOUND"},
		{"PUT", "/api/v1/packs", 405, "METHOD_NOT_ALLOWED"},
		{"DELETE", "/api/v1/audit", 405, "METHOD_NOT_ALLOWED"},
		{"DELETE", "/api/v1/keys/abc", 405, "METHOD_NOT_ALLOWED"},
		{"PATCH", "/api/v1/mirrors/abc", 405, "METHOD_NOT_ALLOWED"},
		{"GET", "/api/v1/mirrors/abc/runs/x", 404, "NOT_FOUND"},
		{"GET", "/api/v1/parity/x", 404, "NOT_FOUND"},
		{"GET", "/nothing", 404, "NAME_UNKNOWN"},
		{"GET", "/v2/a/nothing", 404, "NAME_UNKNOWN"},
		{"POST", "/v2/a/manifests/t", 405, "UNSUPPORTED"},
		{"GET", "/v2/" + long + "tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/" + long, 400, "NAME_INVALID"},
		{"GET", "/api/v1/packs/" + long + "versions", 404, "NOT_FOUND"},
		{"POST", "/healthz", 405, ""},
	} {
		w := send(h, tc.method, tc.target, nil)
		want(t, w, tc.status, tc.code, tc.method+" "+tc.target[:min(len(tc.target), 60)])
		if tc.status == 405 && w.Header().Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tc.method, tc.target)
		}
	}
}
