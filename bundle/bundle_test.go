package bundle

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// TestChain is a chain of two bundles between two registries: the first
// carries every version in scope with everything under it, its referrers
// (OCI 1.1, cosign's tag schema, a referrer of a referrer), states and
// history; the second only what changed since; the same bundle twice
// changes nothing; the second on a registry without the first is refused
// with the position it needs.
func TestChain(t *testing.T) {
	sg := newTestSigner(t)
	a := newSite(t, WithSigner(sg))
	rules := a.pack("acme/rules", "1.0.0", 3000)
	sbom := a.referrer("acme/rules", rules, "application/vnd.example.sbom", `{"sbom":1}`)
	sig := a.cosignSig("acme/rules", rules, "payload of a signature")
	nested := a.referrer("acme/rules", sbom, "application/vnd.example.sig", "a signature of the sbom")
	tools := a.pack("acme/tools", "2.0.0", 100)
	a.setState("acme/tools", "2.0.0", "deprecated")
	a.pack("acme/old", "0.1.0", 10)
	a.setState("acme/old", "0.1.0", "archived")

	x, tar1 := a.export(ExportRequest{})
	doc := x.Doc
	if doc.Sequence != 1 || doc.Previous != "" || doc.Source != "site-test" || len(doc.Versions) != 2 {
		t.Fatalf("first bundle: %+v", doc)
	}
	r, tl := doc.Versions[0], doc.Versions[1]
	if r.Name != "acme/rules" || r.Content != ContentFull || r.Digest != digest.Digest(rules.Digest) || r.Status != "active" {
		t.Fatalf("rules entry: %+v", r)
	}
	wantRefs := []Referrer{{Digest: digest.Digest(sbom.Digest)}, {Digest: digest.Digest(sig.Digest), Tag: oci.CosignTag(digest.Digest(rules.Digest), "sig")},
		{Digest: digest.Digest(nested.Digest)}}
	if !sameReferrers(r.Referrers, wantRefs) {
		t.Fatalf("rules referrers %+v, want %+v", r.Referrers, wantRefs)
	}
	if tl.Name != "acme/tools" || tl.Status != "deprecated" || tl.StatusReason != "test deprecated" {
		t.Fatalf("tools entry: %+v", tl)
	}
	if actions := entryActions(tl.Audit); !slices.Contains(actions, "pack.publish") || !slices.Contains(actions, "pack.lifecycle") {
		t.Fatalf("tools history: %v", actions)
	}
	// 2 versions, 5 manifests (2 packs, 2 referrers, 1 signature), blobs:
	// 2 files, {}, 2 referrer bodies, signature body and its config.
	if doc.Totals.Versions != 2 || doc.Totals.Manifests != 5 || doc.Totals.Blobs != 7 {
		t.Fatalf("totals: %+v", doc.Totals)
	}
	if got := a.audits(ActionExport); len(got) != 1 || got[0].Digest != x.Digest || got[0].Details["signedBy"] != sg.KeyID {
		t.Fatalf("export audit: %+v", got)
	}

	b := newSite(t)
	b.trust(sg, "bundles")
	rep := b.mustImport(tar1, ImportOptions{})
	if rep.State != storage.ImportSucceeded || rep.Bundle.SignedBy == nil || rep.Bundle.SignedBy.ID != sg.KeyID {
		t.Fatalf("report: %+v", rep)
	}
	for _, v := range rep.Versions {
		if v.Result != ResultApplied {
			t.Errorf("version %s:%s %s (%s)", v.Name, v.Version, v.Result, v.Error)
		}
	}
	if got := b.version("acme/rules", "1.0.0"); got.Digest != digest.Digest(rules.Digest) || got.Status != "active" {
		t.Fatalf("rules on b: %+v", got)
	}
	if got := b.version("acme/tools", "2.0.0"); got.Digest != digest.Digest(tools.Digest) || got.Status != "deprecated" {
		t.Fatalf("tools on b: %+v", got)
	}
	if slices.Contains(b.repos(), "acme/old") {
		t.Fatal("an archived version out of scope was imported")
	}
	ctx := context.Background()
	refs, err := b.reg.Referrers(ctx, "acme/rules", digest.Digest(rules.Digest), "")
	if err != nil || len(refs) != 1 || refs[0].Digest != sbom.Digest {
		t.Fatalf("referrers of rules on b: %v %v", refs, err)
	}
	if m, err := b.reg.Manifest(ctx, "acme/rules", oci.CosignTag(digest.Digest(rules.Digest), "sig")); err != nil || m.Digest != digest.Digest(sig.Digest) {
		t.Fatalf("cosign tag on b: %v", err)
	}
	if refs, _ := b.reg.Referrers(ctx, "acme/rules", digest.Digest(sbom.Digest), ""); len(refs) != 1 || refs[0].Digest != nested.Digest {
		t.Fatalf("referrer of the referrer on b: %v", refs)
	}
	imported := b.audits(ActionImport)
	if len(imported) != 1 || imported[0].Digest != x.Digest || imported[0].Details["signedBy"] != sg.KeyID {
		t.Fatalf("import audit: %+v", imported)
	}
	perVersion := b.audits(ActionImportVersion)
	if len(perVersion) != 2 || !strings.Contains(perVersion[1].Details["history"], "pack.lifecycle") {
		t.Fatalf("version audit: %+v", perVersion)
	}
	b.spoolEmpty()

	// What changed since: a new version, a referrer of a version b has,
	// a lifecycle change.
	a.pack("acme/rules", "1.1.0", 50)
	att := a.referrer("acme/tools", tools, "application/vnd.example.att", "an attestation")
	a.setState("acme/rules", "1.0.0", "archived")
	x2, tar2 := a.export(ExportRequest{Since: x.Cursor.String()})
	d2 := x2.Doc
	if d2.Sequence != 2 || d2.Previous != x.Digest || d2.Chain != doc.Chain || len(d2.Versions) != 3 {
		t.Fatalf("second bundle: %+v", d2)
	}
	byName := map[string]Entry{}
	for _, e := range d2.Versions {
		byName[e.Name+":"+e.Version] = e
	}
	if e := byName["acme/rules:1.1.0"]; e.Content != ContentFull {
		t.Fatalf("new version: %+v", e)
	}
	if e := byName["acme/tools:2.0.0"]; e.Content != ContentReferrers || len(e.Referrers) != 1 || e.Referrers[0].Digest != digest.Digest(att.Digest) {
		t.Fatalf("new referrer: %+v", e)
	}
	if e := byName["acme/rules:1.0.0"]; e.Content != ContentState || e.Status != "archived" {
		t.Fatalf("lifecycle change: %+v", e)
	}
	if d2.Totals.Versions != 2 || d2.Totals.Manifests != 2 {
		t.Fatalf("second totals carry only what changed: %+v", d2.Totals)
	}
	b.mustImport(tar2, ImportOptions{})
	if got := b.version("acme/rules", "1.0.0"); got.Status != "archived" {
		t.Fatalf("rules 1.0.0 on b after the second bundle: %s", got.Status)
	}
	if got := b.version("acme/rules", "1.1.0"); got.Status != "active" {
		t.Fatalf("rules 1.1.0 on b: %+v", got)
	}
	if refs, _ := b.reg.Referrers(ctx, "acme/tools", digest.Digest(tools.Digest), ""); len(refs) != 1 || refs[0].Digest != att.Digest {
		t.Fatalf("new referrer on b: %v", refs)
	}

	// Again: reported, nothing done.
	trail := len(b.audits(""))
	again, err := b.importBundle(tar2, ImportOptions{})
	if err != nil || again.State != storage.ImportAlreadyApplied || again.AppliedAt == nil {
		t.Fatalf("the same bundle again: %+v %v", again, err)
	}
	if n := len(b.audits("")); n != trail {
		t.Fatalf("an already applied bundle added %d audit records", n-trail)
	}

	// The second bundle on a registry without the first: refused, with
	// the position it needs, and nothing visible.
	c := newSite(t)
	c.trust(sg, "bundles")
	_, err = c.importBundle(tar2, ImportOptions{})
	var p *Problem
	if !errors.As(err, &p) || !errors.Is(err, ErrOutOfOrder) || p.Details["needs"] != int64(1) || p.Details["applied"] != int64(0) {
		t.Fatalf("a gap: %v (%+v)", err, p)
	}
	if len(c.repos()) != 0 {
		t.Fatalf("a refused bundle left %v", c.repos())
	}
	c.spoolEmpty()
	if refused := c.audits(ActionRefuse); len(refused) != 1 || refused[0].Digest != x2.Digest {
		t.Fatalf("refusal audit: %+v", refused)
	}
}

func sameReferrers(got, want []Referrer) bool {
	sort := func(l []Referrer) []Referrer {
		l = slices.Clone(l)
		slices.SortFunc(l, func(a, b Referrer) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
		return l
	}
	return slices.Equal(sort(got), sort(want))
}

func entryActions(recs []AuditEntry) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Action)
	}
	return out
}

// TestConflicts: a version this registry has with another digest is a
// conflict, reported and left as it is, and so is one bound to another
// digest by a push since deleted (immutable versions); the bundle's other
// versions are applied.
func TestConflicts(t *testing.T) {
	sg := newTestSigner(t)
	a := newSite(t, WithSigner(sg))
	a.pack("acme/rules", "1.0.0", 100)
	a.pack("acme/tools", "2.0.0", 100)
	docs := a.pack("acme/docs", "3.0.0", 100)
	_, tar := a.export(ExportRequest{})

	b := newSite(t)
	b.trust(sg, "bundles")
	mine := b.pack("acme/rules", "1.0.0", 200)
	gone := b.pack("acme/tools", "2.0.0", 300)
	rec := httptest.NewRecorder()
	b.reg.ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/v2/acme/tools/manifests/"+string(gone.Digest), nil))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	rep := b.mustImport(tar, ImportOptions{})
	got := map[string]string{}
	for _, v := range rep.Versions {
		got[v.Name] = v.Result
		if v.Result == ResultConflict && v.Error == "" {
			t.Errorf("%s: a conflict that does not say what is in the way", v.Name)
		}
	}
	if got["acme/rules"] != ResultConflict || got["acme/tools"] != ResultConflict || got["acme/docs"] != ResultApplied {
		t.Fatalf("results: %v", got)
	}
	if v := b.version("acme/rules", "1.0.0"); v.Digest != digest.Digest(mine.Digest) {
		t.Fatalf("acme/rules:1.0.0 overwritten: %s", v.Digest)
	}
	ctx := context.Background()
	if _, err := b.reg.Manifest(ctx, "acme/tools", "2.0.0"); err == nil {
		t.Fatal("acme/tools:2.0.0, deleted here and bound to another digest, came back")
	}
	if v := b.version("acme/docs", "3.0.0"); v.Digest != digest.Digest(docs.Digest) {
		t.Fatalf("acme/docs: %+v", v)
	}
}
