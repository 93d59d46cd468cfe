package registry_test

import (
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
)

// TestHotReadsQueryOnce: a pull by tag and a tags page of a repository
// that has tags are one query each (store statements counted through
// ObserveOps); the tags list asked whether the repository exists first,
// a second query for every listing. An empty page still tells an unknown
// repository (NAME_UNKNOWN) from a known one.
func TestHotReadsQueryOnce(t *testing.T) {
	blobs, meta, _ := teststores.Open(t)
	h := registry.New(blobs, meta)
	var queries atomic.Int64
	meta.ObserveOps(func(op string, _ time.Duration, _ error) {
		if op == "query" {
			queries.Add(1)
		}
	})
	repo := "acme/rules"
	m := imageManifest(t, h, repo, []byte("layer"))
	for _, tag := range []string{"a", "b", "c"} {
		if w := putManifest(t, h, repo, tag, m, oci.MediaTypeImageManifest); w.Code != 201 {
			t.Fatalf("push %s: %d %s", tag, w.Code, w.Body)
		}
	}
	for _, c := range []struct {
		path    string
		status  int
		code    string
		tags    []string
		queries int64
	}{
		{"/v2/" + repo + "/manifests/b", 200, "", nil, 1},
		{"/v2/" + repo + "/tags/list", 200, "", []string{"a", "b", "c"}, 1},
		{"/v2/" + repo + "/tags/list?n=2", 200, "", []string{"a", "b"}, 1},
		{"/v2/" + repo + "/tags/list?last=c", 200, "", []string{}, 2},
		{"/v2/" + repo + "/tags/list?n=0", 200, "", []string{}, 1},
		{"/v2/acme/unknown/tags/list", 404, "NAME_UNKNOWN", nil, 2},
		{"/v2/acme/unknown/tags/list?n=0", 404, "NAME_UNKNOWN", nil, 1},
	} {
		queries.Store(0)
		w := do(t, h, "GET", c.path, nil)
		if c.code != "" {
			expect(t, w, c.status, c.code)
		} else if w.Code != c.status {
			t.Fatalf("GET %s: %d %s", c.path, w.Code, w.Body)
		}
		if c.tags != nil {
			var got struct {
				Name string   `json:"name"`
				Tags []string `json:"tags"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.Tags == nil || len(got.Tags) != len(c.tags) {
				t.Fatalf("GET %s: body %s (%v), want tags %q", c.path, w.Body, err, c.tags)
			}
			for i := range c.tags {
				if got.Tags[i] != c.tags[i] || got.Name != repo {
					t.Fatalf("GET %s: body %s, want tags %q of %s", c.path, w.Body, c.tags, repo)
				}
			}
		}
		if n := queries.Load(); n != c.queries {
			t.Errorf("GET %s: %d store queries, want %d", c.path, n, c.queries)
		}
	}
}

// TestManifestPutStatementsFlatInReferences: checking a manifest's
// references costs the same statements for one layer as for five (the
// sizes before the transaction and the locks in it are one read each for
// up to eight references); it was two statements more per reference, a
// round trip each on PostgreSQL.
func TestManifestPutStatementsFlatInReferences(t *testing.T) {
	blobs, meta, _ := teststores.Open(t)
	h := registry.New(blobs, meta)
	var stmts atomic.Int64
	meta.ObserveOps(func(op string, _ time.Duration, _ error) {
		if op != "commit" {
			stmts.Add(1)
		}
	})
	repo := "acme/refs"
	cost := func(tag string, layers ...[]byte) int64 {
		m := imageManifest(t, h, repo, layers...)
		stmts.Store(0)
		if w := putManifest(t, h, repo, tag, m, oci.MediaTypeImageManifest); w.Code != 201 {
			t.Fatalf("push %s: %d %s", tag, w.Code, w.Body)
		}
		return stmts.Load()
	}
	one := cost("one", []byte("a"))
	five := cost("five", []byte("b"), []byte("c"), []byte("d"), []byte("e"), []byte("f"))
	if five != one {
		t.Fatalf("a manifest PUT with 5 layers ran %d store statements, with 1 layer %d: want as many", five, one)
	}
}
