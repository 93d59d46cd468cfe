package retention_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/packreg/packreg/audit"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/pack"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/retention"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/fs"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// env is the registry with packs and the audit trail, wired as cmd wires
// them, on real stores.
type env struct {
	t     *testing.T
	reg   *registry.Registry
	packs *pack.Service
	store *sqlmeta.Store
}

func newEnv(t *testing.T, open func(testing.TB) (*fs.Store, *sqlmeta.Store, string)) *env {
	blobs, store, dir := open(t)
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	svc := pack.New(store, pack.WithLogger(log), pack.WithSpoolDir(dir))
	audit.NewRecorder(store, log).Watch()
	reg := registry.New(blobs, store, append([]registry.Option{registry.WithLogger(log)}, svc.RegistryOptions()...)...)
	svc.Attach(reg)
	return &env{t: t, reg: reg, packs: svc, store: store}
}

// push pushes version v of pack repo, as oras would, and returns its digest.
func (e *env) push(repo, v string) digest.Digest {
	e.t.Helper()
	ctx := e.t.Context()
	empty := []byte("{}")
	file := []byte(repo + " " + v)
	for _, b := range [][]byte{empty, file} {
		if err := e.reg.PushBlob(ctx, repo, digest.FromBytes(digest.SHA256, b), bytes.NewReader(b)); err != nil {
			e.t.Fatal(err)
		}
	}
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest, "artifactType": oci.ArtifactTypePack,
		"config": map[string]any{"mediaType": oci.MediaTypeEmptyJSON, "digest": digest.FromBytes(digest.SHA256, empty), "size": 2},
		"layers": []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar",
			"digest": digest.FromBytes(digest.SHA256, file), "size": len(file),
			"annotations": map[string]string{oci.AnnotationTitle: "f.txt"}}},
	})
	d, err := e.reg.PushManifest(ctx, repo, v, oci.MediaTypeImageManifest, m)
	if err != nil {
		e.t.Fatalf("push %s:%s: %v", repo, v, err)
	}
	return d
}

func (e *env) setState(repo, v, state string) {
	e.t.Helper()
	if _, err := e.packs.SetLifecycle(e.t.Context(), repo, v, pack.LifecycleRequest{State: state, Reason: "test"}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) status(repo, v string) string {
	e.t.Helper()
	pv, err := e.store.GetPackVersion(e.t.Context(), repo, v)
	if err != nil {
		e.t.Fatal(err)
	}
	return pv.Status
}

// signed says verified for the digests it holds: the signature report
// attest gives the pack API, reduced to its verdict.
type signed map[digest.Digest]bool

func (s signed) SignatureReport(_ context.Context, _ string, d digest.Digest) (*pack.SignatureReport, error) {
	if s[d] {
		return &pack.SignatureReport{Verification: "verified"}, nil
	}
	return &pack.SignatureReport{Verification: "unsigned"}, nil
}

func ptr[T any](v T) *T { return &v }

type planned struct{ name, version, action string }

func plannedOf(items []retention.Item) []planned {
	out := make([]planned, len(items))
	for i, it := range items {
		out[i] = planned{it.Name, it.Version, it.Action}
	}
	return out
}

// TestRunDryEqualsReal: on a realistic registry (active, deprecated and
// archived versions; signed ones with and without force; several
// patterns, the first matching rule governing), a dry run lists exactly
// the changes the following real run makes, the real run makes them
// (lifecycle through the pack path, deletes through the registry, all
// audited as "retention"), and both are recorded.
func TestRunDryEqualsReal(t *testing.T) {
	for name, open := range map[string]func(testing.TB) (*fs.Store, *sqlmeta.Store, string){
		"sqlite": teststores.Open, "postgres": teststores.OpenPostgres,
	} {
		t.Run(name, func(t *testing.T) { testRunDryEqualsReal(t, newEnv(t, open)) })
	}
}

func testRunDryEqualsReal(t *testing.T, e *env) {
	ctx := t.Context()
	for _, v := range []string{"1.0.0", "1.1.0", "1.10.0", "2.0.0"} {
		e.push("acme/rules", v)
	}
	e.push("acme/rules", "0.9.0")
	e.setState("acme/rules", "0.9.0", storage.PackDeprecated)
	e.push("acme/old", "1.0.0")
	e.push("acme/old", "2.0.0")
	e.setState("acme/old", "2.0.0", storage.PackDeprecated)
	sig := signed{}
	for _, repo := range []string{"legacy/a", "forced/b"} {
		sig[e.push(repo, "1.0.0")] = true // signed and verified
		e.push(repo, "2.0.0")
		e.push(repo, "3.0.0")
		e.setState(repo, "1.0.0", storage.PackArchived)
		e.setState(repo, "2.0.0", storage.PackArchived)
	}
	e.push("acme/pinned/x", "1.0.0")
	e.push("untouched", "1.0.0")

	cfg := retention.Config{Rules: []retention.Rule{
		{Repositories: []string{"acme/pinned/**"}}, // shields it from the next rule
		{Repositories: []string{"acme/rules"}, KeepActive: ptr(2)},
		{Repositories: []string{"acme/*"}, ArchiveAfter: ptr(24 * time.Hour)},
		{Repositories: []string{"legacy/*"}, DeleteArchivedAfter: ptr(time.Hour)},
		{Repositories: []string{"forced/*"}, DeleteArchivedAfter: ptr(time.Hour), Force: true},
	}}
	later := func() time.Time { return time.Now().UTC().Add(48 * time.Hour) }
	svc := retention.New(cfg, e.store, e.packs, e.reg, sig, retention.WithClock(later),
		retention.WithLogger(slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))))

	dry, err := svc.Run(ctx, retention.Options{DryRun: true, Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	want := []planned{
		{"acme/old", "2.0.0", "archive"}, {"acme/old", "1.0.0", "archive"},
		{"acme/pinned/x", "1.0.0", "keep"},
		{"acme/rules", "2.0.0", "keep"}, {"acme/rules", "1.10.0", "keep"}, {"acme/rules", "1.1.0", "deprecate"},
		{"acme/rules", "1.0.0", "deprecate"}, {"acme/rules", "0.9.0", "keep"},
		{"forced/b", "3.0.0", "keep"}, {"forced/b", "2.0.0", "delete"}, {"forced/b", "1.0.0", "delete"},
		{"legacy/a", "3.0.0", "keep"}, {"legacy/a", "2.0.0", "delete"}, {"legacy/a", "1.0.0", "keep"},
	}
	if got := plannedOf(dry.Items); !slices.Equal(got, want) {
		t.Fatalf("dry run plan:\n got %v\nwant %v", got, want)
	}
	if e.status("acme/rules", "1.0.0") != storage.PackActive || e.status("legacy/a", "2.0.0") != storage.PackArchived {
		t.Fatal("the dry run changed something")
	}

	real, err := svc.Run(ctx, retention.Options{Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if got := plannedOf(real.Items); !slices.Equal(got, plannedOf(dry.Items)) {
		t.Fatalf("the real run differs from the dry run:\n real %v\n  dry %v", got, plannedOf(dry.Items))
	}
	if real.Counts != dry.Counts || real.Counts != (storage.RetentionCounts{Versions: 14, Kept: 7, Deprecated: 2, Archived: 2, Deleted: 3}) {
		t.Fatalf("counts: real %+v, dry %+v", real.Counts, dry.Counts)
	}
	for _, w := range []struct{ repo, v, status string }{
		{"acme/rules", "1.1.0", storage.PackDeprecated}, {"acme/rules", "1.10.0", storage.PackActive},
		{"acme/old", "1.0.0", storage.PackArchived}, {"acme/old", "2.0.0", storage.PackArchived},
		{"legacy/a", "2.0.0", storage.PackDeleted}, {"legacy/a", "1.0.0", storage.PackArchived},
		{"forced/b", "1.0.0", storage.PackDeleted}, {"acme/pinned/x", "1.0.0", storage.PackActive},
		{"untouched", "1.0.0", storage.PackActive},
	} {
		if got := e.status(w.repo, w.v); got != w.status {
			t.Errorf("%s:%s is %s, want %s", w.repo, w.v, got, w.status)
		}
	}
	// The tag is gone; the manifest stays for garbage collection.
	if _, err := e.reg.Manifest(ctx, "legacy/a", "2.0.0"); !errors.Is(err, oci.ErrManifestUnknown) {
		t.Errorf("legacy/a:2.0.0 after the delete: %v", err)
	}
	if _, err := e.reg.Manifest(ctx, "legacy/a", "1.0.0"); err != nil {
		t.Errorf("legacy/a:1.0.0 (signed, kept): %v", err)
	}
	hist, err := e.store.PackLifecycle(ctx, "acme/rules", "1.1.0")
	if err != nil || len(hist) == 0 || hist[len(hist)-1].Actor != retention.Actor || hist[len(hist)-1].To != storage.PackDeprecated {
		t.Fatalf("acme/rules:1.1.0 history %+v %v: want the last change by %q", hist, err, retention.Actor)
	}
	waitAudit(t, e.store, "tag.delete", "legacy/a:2.0.0")
	waitAudit(t, e.store, pack.ActionLifecycle, "acme/old:1.0.0")

	runs, err := svc.Runs(ctx, 0, 10)
	if err != nil || len(runs) != 2 || runs[0].ID != real.ID || runs[0].DryRun || !runs[1].DryRun || runs[0].Counts != real.Counts {
		t.Fatalf("recorded runs %+v %v", runs, err)
	}

	// A second run finds nothing more to do but the deletes of what it
	// archived, which are not old enough yet.
	again, err := svc.Run(ctx, retention.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := again.Counts; c.Deprecated != 0 || c.Archived != 0 || c.Deleted != 0 {
		t.Fatalf("second run plans %+v: %v", c, plannedOf(again.Items))
	}
}

// waitAudit waits until the trail has a record of action on target by
// the retention actor (the registry's events reach it through the outbox).
func waitAudit(t *testing.T, s *sqlmeta.Store, action, target string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs, err := s.ListAudit(t.Context(), storage.AuditQuery{Action: action, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Target == target && r.Actor == retention.Actor {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s of %s by %s in the audit trail: %+v", action, target, retention.Actor, recs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
