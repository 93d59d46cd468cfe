package pack_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/pack"
	"github.com/packreg/packreg/pack/client"
)

// TestClient drives the API through the Go client the CLI uses.
func TestClient(t *testing.T) {
	e := newEnv(t, pack.DefaultPolicy())
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	c := client.New(srv.URL, srv.Client())
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	os.WriteFile(path, rulesYAML.data, 0o644)

	md := pack.Metadata{Name: "acme/rules", Version: "1.0.0", Labels: map[string]string{"team": "sec"}}
	v, created, err := c.Publish(ctx, md, []client.File{{Path: path}, {Path: path, Name: "copy/rules.yaml", MediaType: "text/yaml"}})
	if err != nil || !created || len(v.Files) != 2 || v.Files[0].Name != "rules.yaml" || v.Files[1].MediaType != "text/yaml" {
		t.Fatalf("Publish = %+v, %v, %v", v, created, err)
	}
	if _, created, err := c.Publish(ctx, md, []client.File{{Path: path}, {Path: path, Name: "copy/rules.yaml", MediaType: "text/yaml"}}); err != nil || created {
		t.Fatalf("republish: created %v, %v", created, err)
	}
	_, _, err = c.Publish(ctx, pack.Metadata{Name: "acme/rules", Version: "1.0"}, []client.File{{Path: path}})
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Code != apierr.VersionInvalid || ae.Status != http.StatusBadRequest {
		t.Fatalf("bad version: %v", err)
	}
	if _, _, err := c.Publish(ctx, md, []client.File{{Path: filepath.Join(dir, "missing")}}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if l, err := c.List(ctx, client.ListQuery{Label: "team=sec"}); err != nil || len(l.Items) != 1 {
		t.Fatalf("List = %+v, %v", l, err)
	}
	vs, err := c.SetLifecycle(ctx, "acme/rules", "", pack.LifecycleRequest{State: "deprecated", Reason: "old"})
	if err != nil || len(vs) != 1 || vs[0].Status != "deprecated" {
		t.Fatalf("SetLifecycle = %+v, %v", vs, err)
	}
	if h, err := c.History(ctx, "acme/rules", "1.0.0"); err != nil || len(h.History) != 2 {
		t.Fatalf("History = %+v, %v", h, err)
	}
	if m, err := c.Manifest(ctx, "acme/rules", "1.0.0"); err != nil || m.Digest != v.Digest {
		t.Fatalf("Manifest = %+v, %v", m, err)
	}
	if _, err := c.Version(ctx, "acme/rules", "9.9.9"); !errors.As(err, &ae) || ae.Code != apierr.NotFound {
		t.Fatalf("unknown version: %v", err)
	}
	if l, err := c.Audit(ctx, client.AuditQuery{Action: "pack.lifecycle"}); err != nil || len(l.Items) != 1 {
		t.Fatalf("Audit = %+v, %v", l, err)
	}
	if ver, err := c.VerifyAudit(ctx); err != nil || !ver.OK {
		t.Fatalf("VerifyAudit = %+v, %v", ver, err)
	}
}
