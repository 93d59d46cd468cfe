package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/compliance"
	"github.com/packreg/packreg/internal/routes"
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
	// count starts an app with change, counts, and stops it: the next
	// start opens the same database.
	count := func(change func(*Config)) int {
		a, stop := restartableApp(t, change)
		defer stop()
		recs, err := a.packs.trail.ListAudit(t.Context(), storage.AuditQuery{Action: "config.change", TargetPrefix: "compliance.rules"})
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}
	signed := compliance.Rule{Name: "signed", Repositories: []string{"**"}, RequireSignature: true}
	count(rules())
	n := count(rules(signed))
	if m := count(rules(signed)); n == 0 || m != n {
		t.Fatalf("config.change on compliance.rules: %d after the change, %d after a start without one", n, m)
	}
}

// TestAuthCompliance: with authentication on, the compliance views and
// the dashboard count and list only what the caller may pull, a pack page
// needs pull on the pack, and the rules, the history and the registry-wide
// parts of the dashboard are the admins'.
func TestAuthCompliance(t *testing.T) {
	e := newAuthEnv(t, nil)
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	e.app.att.start(ctx, &wg) // compliance evaluates once attest has indexed
	e.app.comp.start(ctx, &wg)
	t.Cleanup(func() { stop(); wg.Wait() })
	for _, p := range []struct{ cred, name string }{{"basic:root", "private/pack"}, {"basic:alice", "acme/pack"}} {
		body, ct := publishForm(p.name, "1.0.0", []byte("data of "+p.name))
		expect(t, p.cred+" publishes "+p.name, e.do(p.cred, "POST", "/api/v1/packs", body, "Content-Type", ct), 201, "")
	}
	versions := func(cred string) int {
		r := e.do(cred, "GET", "/api/v1/compliance/summary", nil)
		expect(t, cred+" reads the summary", r, 200, "")
		var sum compliance.Summary
		json.Unmarshal(r.body, &sum)
		return int(sum.Versions)
	}
	deadline := time.Now().Add(30 * time.Second)
	for versions("basic:root") != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the worker never evaluated both versions")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := versions("basic:carol"); n != 1 {
		t.Errorf("carol's summary counts %d versions, want 1 (private/pack is not hers to pull)", n)
	}
	if n := versions(""); n != 0 {
		t.Errorf("an anonymous summary counts %d versions, want 0", n)
	}
	if list := string(e.do("basic:carol", "GET", "/api/v1/compliance/packs", nil).body); !strings.Contains(list, "acme/pack") || strings.Contains(list, "private/pack") {
		t.Errorf("carol's compliance listing: %s", list)
	}
	rules := []byte(`{"rules":[{"repositories":["**"],"requireSignature":true}]}`)
	expect(t, "carol puts rules", e.do("basic:carol", "PUT", "/api/v1/compliance/rules", rules, "Content-Type", "application/json"), 403, "DENIED")
	expect(t, "root puts rules", e.do("basic:root", "PUT", "/api/v1/compliance/rules", rules, "Content-Type", "application/json"), 200, "")
	expect(t, "anonymous reads rules", e.do("", "GET", "/api/v1/compliance/rules", nil), 401, "UNAUTHORIZED")
	expect(t, "carol reads rules", e.do("basic:carol", "GET", "/api/v1/compliance/rules", nil), 200, "")
	expect(t, "carol reads the history", e.do("basic:carol", "GET", "/api/v1/compliance/history", nil), 403, "DENIED")
	expect(t, "root reads the history", e.do("basic:root", "GET", "/api/v1/compliance/history", nil), 200, "")

	expect(t, "carol opens private/pack's page", e.do("basic:carol", "GET", "/ui/packs/private/pack", nil), 403, "")
	expect(t, "carol opens acme/pack's page", e.do("basic:carol", "GET", "/ui/packs/acme/pack", nil), 200, "")
	page := e.do("basic:carol", "GET", "/ui/", nil)
	expect(t, "carol's overview", page, 200, "")
	if b := string(page.body); !strings.Contains(b, `id="count-versions">1<`) || strings.Contains(b, "Recent changes") {
		t.Errorf("carol's overview counts other than her one version, or shows the audit trail:\n%s", b)
	}
	expect(t, "the stylesheet is public", e.do("", "GET", "/ui/style.css", nil), 200, "")
}

// TestComplianceRouteAccess: the compliance API's and the dashboard's
// rows declare what README's rights table says.
func TestComplianceRouteAccess(t *testing.T) {
	a := testApp(t, nil)
	got := map[string]routes.Access{}
	for _, r := range append(a.comp.svc.Routes(nil), a.comp.dashboard(&stores{}, a.att.svc, nil, true).Routes()...) {
		got[r.Method+" "+r.Path] = r.Access
	}
	want := map[string]routes.Access{
		"GET /api/v1/compliance/summary": routes.AnyCaller, "GET /api/v1/compliance/packs": routes.AnyCaller,
		"GET /api/v1/compliance/history": routes.AdminOnly, "GET /api/v1/compliance/rules": routes.Authenticated,
		"PUT /api/v1/compliance/rules": routes.AdminOnly,
		"GET /ui":                      routes.Public, "GET /ui/style.css": routes.Public, "GET /ui/": routes.AnyCaller, "GET /ui/packs/{name:.+}": routes.CanPull,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("access:\n got %v\nwant %v", got, want)
	}
}
