package compliance

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/storage"
)

// evidence is attest's verdicts as a table: the seam cmd fills with
// attest's report (the conformance tests run the real one with cosign).
type evidence struct {
	mu sync.Mutex
	m  map[digest.Digest]Evidence
}

func (e *evidence) Evidence(_ context.Context, _ string, d digest.Digest) (Evidence, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev, ok := e.m[d]; ok {
		return ev, nil
	}
	return Evidence{Verification: "unsigned"}, nil
}

func (e *evidence) set(d digest.Digest, ev Evidence) {
	e.mu.Lock()
	e.m[d] = ev
	e.mu.Unlock()
}

const slsa = "https://slsa.dev/provenance/v1"

type fixture struct {
	t   *testing.T
	st  storage.Store
	ev  *evidence
	svc *Service
	srv *httptest.Server
	now time.Time
	// lease is the worker's, kept across steps as Run keeps it.
	lease *storage.KeptLease
}

func newFixture(t *testing.T, cfg Config, enforced ...Rule) *fixture {
	_, st, _ := teststores.Open(t)
	f := &fixture{t: t, st: st, ev: &evidence{m: map[digest.Digest]Evidence{}}, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	f.svc = New(st, f.ev, cfg, WithEnforced(enforced), WithClock(func() time.Time { return f.now }),
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err := f.svc.Subscribe(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.svc.Handler(slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) publish(name, version string) digest.Digest {
	d := digest.FromBytes(digest.SHA256, []byte(name+version))
	_, err := f.st.PutPackVersion(f.t.Context(), &storage.PackVersion{Name: name, Version: version, Digest: d,
		MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: "application/vnd.packreg.pack.v1"}, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// step runs one pass of the worker, as Run does on a tick.
func (f *fixture) step() {
	f.t.Helper()
	if f.lease == nil {
		f.lease = storage.NewKeptLease(f.st, lease, "test", leaseTTL)
	}
	ok, err := f.lease.Run(f.t.Context(), func(wctx context.Context) error { return f.svc.step(f.t.Context(), wctx) })
	if err != nil || !ok {
		f.t.Fatalf("step: lease %v, %v", ok, err)
	}
}

func (f *fixture) get(path string, v any) *http.Response {
	f.t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if resp.StatusCode != http.StatusOK {
			f.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		if err := json.Unmarshal(b, v); err != nil {
			f.t.Fatalf("GET %s: %v: %s", path, err, b)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

func (f *fixture) put(path, body string) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPut, f.srv.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSummaryAndPacksFromStoredFindings(t *testing.T) {
	f := newFixture(t, Config{Rules: []Rule{{Name: "provenance", Repositories: []string{"acme/**"}, RequireSignature: true, RequiredAttestations: []string{slsa}}}})
	good := f.publish("acme/a", "1.0.0")
	f.publish("acme/a", "1.1.0")
	f.publish("other/x", "0.1.0")
	f.ev.set(good, Evidence{Verification: "verified", Attestations: []string{slsa}, Newest: f.now})
	f.step()

	var sum Summary
	f.get(Prefix+"/summary", &sum)
	if sum.Versions != 3 || sum.Compliant != 2 || sum.Failing != 1 || sum.Attested != 1 ||
		sum.Verification.Verified != 1 || sum.Verification.Unsigned != 2 || sum.AttestationCoverage[slsa] != 1 || sum.Lifecycle.Active != 3 {
		t.Fatalf("summary %+v", sum)
	}
	if sum.GeneratedAt == nil || !sum.GeneratedAt.Equal(f.now) {
		t.Fatalf("generatedAt %v, want the evaluation's time %v", sum.GeneratedAt, f.now)
	}
	f.get(Prefix+"/summary?repositories=acme/*", &sum)
	if sum.Versions != 2 || sum.Failing != 1 {
		t.Fatalf("summary of acme/*: %+v", sum)
	}

	var page Page
	f.get(Prefix+"/packs?status=failing", &page)
	if len(page.Items) != 1 || page.Items[0].Version != "1.1.0" || page.Items[0].Compliant ||
		len(page.Items[0].Findings) != 1 || !strings.Contains(page.Items[0].Findings[0].Reason, "no verified attestation of "+slsa) {
		t.Fatalf("failing: %+v", page)
	}
	f.get(Prefix+"/packs?status=compliant&name=acme/", &page)
	if len(page.Items) != 1 || page.Items[0].Version != "1.0.0" || !page.Items[0].Attested || page.Items[0].Attestations[0] != slsa {
		t.Fatalf("compliant acme/: %+v", page)
	}
	// Pages follow the cursor to the end.
	var all []string
	cursor := ""
	for range 5 {
		page = Page{}
		f.get(Prefix+"/packs?limit=2"+cursor, &page)
		for _, it := range page.Items {
			all = append(all, it.Name+":"+it.Version)
		}
		if page.Next == "" {
			break
		}
		cursor = "&cursor=" + page.Next
	}
	if strings.Join(all, " ") != "acme/a:1.0.0 acme/a:1.1.0 other/x:0.1.0" {
		t.Fatalf("paged: %v", all)
	}

	resp := f.get(Prefix+"/packs?format=csv&status=failing", nil)
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("csv: %v %q", err, resp.Header.Get("Content-Type"))
	}
	if len(rows) != 2 || rows[0][0] != "name" || rows[1][1] != "1.1.0" || rows[1][7] != "false" || !strings.HasPrefix(rows[1][8], "provenance: ") {
		t.Fatalf("csv rows %q", rows)
	}

	for _, bad := range []string{"/packs?status=bad", "/packs?limit=0", "/packs?cursor=zz", "/packs?format=xml", "/packs?nope=1", "/summary?repositories=a/**/b", "/history?step=1s", "/rules?x=1"} {
		if resp := f.get(Prefix+bad, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", bad, resp.StatusCode)
		}
	}
}

func TestRuleChangeReevaluates(t *testing.T) {
	enforced := Rule{Name: "attest.policies[0]", Enforce: true, Repositories: []string{"signed/*"}, RequireSignature: true}
	f := newFixture(t, Config{}, enforced)
	f.publish("acme/a", "1.0.0")
	f.publish("signed/b", "1.0.0")
	f.step()
	var sum Summary
	f.get(Prefix+"/summary", &sum)
	if sum.Compliant != 1 || sum.Failing != 1 {
		t.Fatalf("before the rule change (the enforced rule fails signed/b): %+v", sum)
	}
	code, body := f.put(Prefix+"/rules", `{"rules":[{"name":"active only","repositories":["acme/*"],"lifecycle":["deprecated"]}]}`)
	if code != http.StatusOK {
		t.Fatalf("PUT rules: %d %s", code, body)
	}
	// The stored findings do not change until the worker evaluates.
	f.get(Prefix+"/summary", &sum)
	if sum.Failing != 1 {
		t.Fatalf("summary recomputed on read: %+v", sum)
	}
	f.step()
	f.get(Prefix+"/summary", &sum)
	if sum.Compliant != 0 || sum.Failing != 2 {
		t.Fatalf("after the rule change: %+v", sum)
	}
	var rs RuleSet
	f.get(Prefix+"/rules", &rs)
	if rs.Source != "api" || len(rs.Rules) != 1 || rs.Rules[0].Name != "active only" || len(rs.Enforced) != 1 || !rs.Enforced[0].Enforce {
		t.Fatalf("rules: %+v", rs)
	}
	for _, bad := range []string{
		`{"rules":[{"repositories":["acme/*"],"requireSignature":true,"enforce":true}]}`,
		`{"rules":[{"repositories":[],"requireSignature":true}]}`,
		`{"rules":[{"repositories":["a"]}]}`,
		`{"rules":[{"repositories":["a"],"lifecycle":["gone"]}]}`,
		`{"rules":[{"repositories":["a"],"maxAge":"soon"}]}`,
		`{"rules":[{"repositories":["a"],"requireSignature":true,"typo":1}]}`,
		`{}`,
	} {
		if code, body := f.put(Prefix+"/rules", bad); code != http.StatusBadRequest {
			t.Errorf("PUT %s: %d %s, want 400", bad, code, body)
		}
	}
}

func TestAgeRuleFailsAsTimePasses(t *testing.T) {
	f := newFixture(t, Config{ReevaluateEvery: time.Hour, Rules: []Rule{{Repositories: []string{"**"}, MaxAge: Duration(24 * time.Hour)}}})
	d := f.publish("acme/a", "1.0.0")
	f.ev.set(d, Evidence{Verification: "verified", Newest: f.now})
	f.step()
	var page Page
	f.get(Prefix+"/packs?status=failing", &page)
	if len(page.Items) != 0 {
		t.Fatalf("fresh signature fails: %+v", page)
	}
	f.now = f.now.Add(25 * time.Hour)
	f.step() // no event: the periodic pass
	f.get(Prefix+"/packs?status=failing", &page)
	if len(page.Items) != 1 || !strings.Contains(page.Items[0].Findings[0].Reason, "over 24h0m0s") {
		t.Fatalf("stale signature: %+v", page)
	}
	var h HistoryPage
	f.get(Prefix+"/history?from=2026-03-01T00:00:00Z&to=2026-03-03T00:00:00Z&step=1h", &h)
	if len(h.Points) != 2 || h.Points[0].Compliant != 1 || h.Points[1].Failing != 1 {
		t.Fatalf("history %+v", h)
	}
}

func TestEventsOfOneRepositoryEvaluateIt(t *testing.T) {
	f := newFixture(t, Config{Rules: []Rule{{Repositories: []string{"**"}, RequireSignature: true}}})
	d := f.publish("acme/a", "1.0.0")
	f.step()
	f.ev.set(d, Evidence{Verification: "verified", Newest: f.now})
	// Nothing says acme/a changed: the stored finding stands.
	f.step()
	var sum Summary
	if f.get(Prefix+"/summary", &sum); sum.Compliant != 0 {
		t.Fatalf("re-evaluated without an event: %+v", sum)
	}
	// A signature pushed to acme/a is an event about it.
	if err := f.st.LinkBlob(t.Context(), "acme/a", d, 1, storage.Event{Action: "manifest.push", Target: "acme/a", Digest: d}); err != nil {
		t.Fatal(err)
	}
	f.step()
	if f.get(Prefix+"/summary", &sum); sum.Compliant != 1 {
		t.Fatalf("after an event about acme/a: %+v", sum)
	}
}

// TestScrubMismatchIsAFinding: a blob a scrub found bad makes every
// version holding it (as its manifest, its config or a file) fail the
// built-in integrity finding, at the next pass after the scrub's event,
// with or without rules; the other versions are untouched. A blob a
// later scrub finds sound again clears the finding.
func TestScrubMismatchIsAFinding(t *testing.T) {
	f := newFixture(t, Config{})
	file := digest.FromBytes(digest.SHA256, []byte("a file that rots"))
	_, err := f.st.PutPackVersion(t.Context(), &storage.PackVersion{Name: "acme/a", Version: "1.0.0",
		Digest: digest.FromBytes(digest.SHA256, []byte("manifest a")), MediaType: "application/vnd.oci.image.manifest.v1+json",
		ArtifactType: "application/vnd.packreg.pack.v1", Files: []storage.PackFile{{Name: "f", Digest: file, Size: 1}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.publish("acme/b", "1.0.0")
	// The pack index keeps no config digest: the manifest's references do.
	config := digest.FromBytes(digest.SHA256, []byte(`{"name":"acme/c"}`))
	mc := &storage.Manifest{Repo: "acme/c", Digest: f.publish("acme/c", "1.0.0"), MediaType: "application/vnd.oci.image.manifest.v1+json",
		Payload: []byte("manifest c"), Size: 10, Refs: []digest.Digest{config}}
	if err := f.st.LinkBlob(t.Context(), "acme/c", config, 17); err != nil {
		t.Fatal(err)
	}
	if err := f.st.PutManifest(t.Context(), mc, nil, storage.PutManifestOptions{}); err != nil {
		t.Fatal(err)
	}
	f.step()
	records := func() map[string]storage.ComplianceRecord {
		recs, err := f.st.ListComplianceRecords(t.Context(), storage.ComplianceQuery{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]storage.ComplianceRecord{}
		for _, r := range recs {
			out[r.Name] = r
		}
		return out
	}
	if r := records(); !r["acme/a"].Compliant || !r["acme/b"].Compliant || !r["acme/c"].Compliant {
		t.Fatalf("before the scrub: %+v", r)
	}
	for _, d := range []digest.Digest{file, config} {
		ev := storage.Event{Action: "blob.corrupt", Actor: "scrub", Target: "blob", Digest: d}
		if _, err := f.st.MarkBlobBad(t.Context(), d, "hashes to sha256:00", ev); err != nil {
			t.Fatal(err)
		}
	}
	f.step()
	r := records()
	a := r["acme/a"]
	if a.Compliant || len(a.Findings) != 1 || a.Findings[0].Rule != IntegrityRule || a.Findings[0].Status != Fail ||
		!strings.Contains(a.Findings[0].Reason, string(file)) {
		t.Fatalf("acme/a after the scrub: %+v", a)
	}
	if !r["acme/b"].Compliant || len(r["acme/b"].Findings) != 0 {
		t.Fatalf("acme/b after the scrub: %+v", r["acme/b"])
	}
	if c := r["acme/c"]; c.Compliant || len(c.Findings) != 1 || !strings.Contains(c.Findings[0].Reason, string(config)) {
		t.Fatalf("acme/c after the scrub found its config bad: %+v", c)
	}

	ev := storage.Event{Action: "blob.repaired", Actor: "scrub", Target: "blob", Digest: file}
	if cleared, err := f.st.ClearBlobBad(t.Context(), file, ev); err != nil || !cleared {
		t.Fatalf("ClearBlobBad: %v %v", cleared, err)
	}
	f.step()
	if r := records(); !r["acme/a"].Compliant || r["acme/c"].Compliant {
		t.Fatalf("after acme/a's file was found sound again: %+v", r)
	}
}

// batchEvidence is the evidence table with the batch ability, counting
// how each way is asked.
type batchEvidence struct {
	*evidence
	single, batches int
	asked           []digest.Digest
}

func (b *batchEvidence) Evidence(ctx context.Context, repo string, d digest.Digest) (Evidence, error) {
	b.single++
	return b.evidence.Evidence(ctx, repo, d)
}

func (b *batchEvidence) EvidenceMany(ctx context.Context, vs []storage.PackVersion) ([]Evidence, error) {
	b.batches++
	out := make([]Evidence, len(vs))
	for i, v := range vs {
		b.asked = append(b.asked, v.Digest)
		out[i], _ = b.evidence.Evidence(ctx, v.Name, v.Digest)
	}
	return out, nil
}

// A BatchVerifier is asked once for a batch of versions, never about a
// deleted one, and the evidence lines up with the versions as one call
// per version would.
func TestEvidenceInBatches(t *testing.T) {
	table := &evidence{m: map[digest.Digest]Evidence{}}
	vs := []storage.PackVersion{
		{Name: "a", Version: "1.0.0", Digest: "sha256:aa"},
		{Name: "a", Version: "2.0.0", Digest: "sha256:bb", Status: storage.PackDeleted},
		{Name: "b", Version: "1.0.0", Digest: "sha256:cc"},
	}
	table.set("sha256:aa", Evidence{Verification: "verified", Attestations: []string{slsa}})
	table.set("sha256:bb", Evidence{Verification: "verified"})
	table.set("sha256:cc", Evidence{Verification: "invalid"})
	one := &Service{ver: table}
	want, err := one.evidence(t.Context(), vs)
	if err != nil {
		t.Fatal(err)
	}
	if want[1].Verification != "" || want[0].Verification != "verified" || want[2].Verification != "invalid" {
		t.Fatalf("one by one: %+v", want)
	}
	b := &batchEvidence{evidence: table}
	got, err := (&Service{ver: b}).evidence(t.Context(), vs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || b.batches != 1 || b.single != 0 || len(b.asked) != 2 {
		t.Fatalf("batched: %+v (%d batches, %d single, asked %v), want %+v", got, b.batches, b.single, b.asked, want)
	}
}
