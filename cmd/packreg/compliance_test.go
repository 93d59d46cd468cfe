package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/packreg/packreg/compliance"
	"github.com/packreg/packreg/storage"
)

// TestRootAndDashboard: / sends a browser to the dashboard and tells an
// API client where the API is; the dashboard's pages answer HTML with a
// policy that runs no script, and escape what a name holds.
func TestRootAndDashboard(t *testing.T) {
	h := edgeApp(t, nil)
	if w := send(h, http.MethodGet, "/", nil, "Accept", "text/html,application/xhtml+xml"); w.Code != http.StatusFound || w.Header().Get("Location") != "/ui/" {
		t.Fatalf("GET / from a browser: %d %q", w.Code, w.Header().Get("Location"))
	}
	if w := send(h, http.MethodGet, "/", nil, "Accept", "application/json"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"api": "/api/v1/openapi.json"`) {
		t.Fatalf("GET / from an API client: %d %s", w.Code, w.Body)
	}
	w := send(h, http.MethodGet, "/ui/", nil)
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") ||
		!strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'none'") || !strings.Contains(w.Body.String(), `id="count-versions">0<`) {
		t.Fatalf("GET /ui/: %d %v\n%s", w.Code, w.Header(), w.Body)
	}
	if w := send(h, http.MethodGet, "/ui/?name=%3Cscript%3E", nil); w.Code != http.StatusOK || strings.Contains(w.Body.String(), "<script>") ||
		!strings.Contains(w.Body.String(), "&lt;script&gt;") {
		t.Fatalf("a search for <script> is not escaped: %d\n%s", w.Code, w.Body)
	}
	for _, bad := range []string{"/ui/?cursor=zz", "/ui/?nope=1", "/ui/packs/a%20b"} {
		if w := send(h, http.MethodGet, bad, nil); w.Code != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", bad, w.Code)
		}
	}
	if w := send(h, http.MethodGet, "/ui/packs/nobody/here", nil); w.Code != http.StatusNotFound {
		t.Errorf("unknown pack: %d, want 404", w.Code)
	}
	if w := send(h, http.MethodPost, "/ui/", nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: %d, want 405 (the dashboard changes nothing)", w.Code)
	}
}

// TestComplianceRulesChangeIsAudited: a start with other compliance rules
// than the last start records config.change on compliance.rules, as
// attest.policies does; a start with the same rules records nothing.
func TestComplianceRulesChangeIsAudited(t *testing.T) {
	dir := t.TempDir()
	rules := func(r ...compliance.Rule) func(*Config) {
		return func(c *Config) { c.Data, c.Compliance.Rules = dir, r }
	}
	count := func(a *app) int {
		recs, err := a.packs.trail.ListAudit(t.Context(), storage.AuditQuery{Action: "config.change", TargetPrefix: "compliance.rules"})
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}
	signed := compliance.Rule{Name: "signed", Repositories: []string{"**"}, RequireSignature: true}
	testApp(t, rules())
	n := count(testApp(t, rules(signed)))
	if m := count(testApp(t, rules(signed))); n == 0 || m != n {
		t.Fatalf("config.change on compliance.rules: %d after the change, %d after a start without one", n, m)
	}
}
