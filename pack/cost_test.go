package pack_test

import (
	"net/http"
	"testing"

	"github.com/packreg/packreg/pack"
)

// TestPackPushCost: a pack manifest PUT writes the manifest, its tags,
// its claims, its events, their audit records and the pack version in one
// transaction; nothing else writes on the request (the pack index used to
// read the manifest back and write in a transaction of its own, and the
// trail to drain twice, then once, after the commit).
func TestPackPushCost(t *testing.T) {
	e := newEnv(t, pack.DefaultPolicy())
	m := e.ociPack("acme/cost", map[string]string{"org.opencontainers.image.description": "cost"},
		file{name: "rules.yaml", data: []byte("rules: []")})
	before := e.store.Writes()
	if w := e.putManifest("acme/cost", "1.0.0", m); w.Code != http.StatusCreated {
		t.Fatalf("push: %d %s", w.Code, w.Body)
	}
	if n := e.store.Writes() - before; n != 1 {
		t.Fatalf("a pack manifest PUT committed %d writes, want 1 (the push with its index and its audit records)", n)
	}
	if v, err := e.store.GetPackVersion(t.Context(), "acme/cost", "1.0.0"); err != nil || v.Description != "cost" || len(v.Files) != 1 {
		t.Fatalf("version after the push: %+v, %v", v, err)
	}
	if recs := e.audit("action=pack.publish"); len(recs) != 1 {
		t.Fatalf("pack.publish records: %+v", recs)
	}
}

// TestPackPublishCost: a REST publish of one file commits each blob with
// its audit records (1 write each, the file and the config) and the
// manifest with its pack version and its audit records (1 more); it does
// not index the version again after the push did (it used to: 11 writes,
// with a third audit drain and a second pack index write; then 6, with an
// audit drain after each commit).
func TestPackPublishCost(t *testing.T) {
	e := newEnv(t, pack.DefaultPolicy())
	before := e.store.Writes()
	e.mustPublish(pack.Metadata{Name: "acme/cost", Version: "1.0.0", Description: "cost"},
		file{name: "rules.yaml", data: []byte("rules: []")})
	if n := e.store.Writes() - before; n != 3 {
		t.Fatalf("a REST publish of one file committed %d writes, want 3", n)
	}
	if recs := e.audit("action=pack.publish"); len(recs) != 1 {
		t.Fatalf("pack.publish records: %+v", recs)
	}
}
