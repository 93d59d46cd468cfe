package registry_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage/fs"
	"github.com/packreg/packreg/storage/sqlmeta"
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
// references costs the same statements for one layer as for five (their
// lookup is one read for up to eight references); it was two statements
// more per reference, a round trip each on PostgreSQL.
func TestManifestPutStatementsFlatInReferences(t *testing.T) {
	blobs, meta, _ := teststores.Open(t)
	h := registry.New(blobs, meta)
	put := putStatements(t, h, meta)
	repo := "acme/refs"
	cost := func(tag string, layers ...[]byte) int64 {
		return put(repo, tag, imageManifest(t, h, repo, layers...), oci.MediaTypeImageManifest)
	}
	one := cost("one", []byte("a"))
	five := cost("five", []byte("b"), []byte("c"), []byte("d"), []byte("e"), []byte("f"))
	if five != one {
		t.Fatalf("a manifest PUT with 5 layers ran %d store statements, with 1 layer %d: want as many", five, one)
	}
}

// TestManifestPutReadsReferencesOnce: a manifest PUT looks its references
// up once, in its transaction, where it locks them against a collector
// and compares their sizes: an image manifest's blobs and an index's
// child manifests alike cost one statement more than an index of none
// (up to eight references). The registry read them before the
// transaction too: a read more for an image manifest (its blob sizes),
// one per child for an index (each a whole manifest), and the lock of an
// index's children asked the blobs first: a round trip each on
// PostgreSQL. There an image manifest's blobs, with the sizes their
// descriptors claim (PresentBlobSizes), are checked in the put's one
// statement: no statement more than an index of none.
func TestManifestPutReadsReferencesOnce(t *testing.T) {
	for name, open := range map[string]func(testing.TB) (*fs.Store, *sqlmeta.Store, string){
		"sqlite": teststores.Open, "postgres": teststores.OpenPostgres,
	} {
		imageMore := int64(1)
		if name == "postgres" {
			imageMore = 0
		}
		t.Run(name, func(t *testing.T) {
			blobs, meta, _ := open(t)
			h := registry.New(blobs, meta)
			put := putStatements(t, h, meta)
			repo := "acme/refs"
			cost := func(tag string, b []byte, mt string) int64 { return put(repo, tag, b, mt) }
			index := func(children ...oci.Descriptor) []byte {
				return mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageIndex,
					"manifests": append([]oci.Descriptor{}, children...)})
			}
			cost("warm", index(), oci.MediaTypeImageIndex) // the repository's id remembered
			none := cost("none", index(), oci.MediaTypeImageIndex)
			var children []oci.Descriptor
			for i := range 3 {
				m := imageManifest(t, h, repo, []byte{byte(i)})
				if n := cost(fmt.Sprint("image", i), m, oci.MediaTypeImageManifest); n != none+imageMore {
					t.Fatalf("an image manifest PUT ran %d store statements, an index of none %d: want %d more, for its references", n, none, imageMore)
				}
				children = append(children, desc(oci.MediaTypeImageManifest, sha(m), int64(len(m))))
			}
			if n := cost("three", index(children...), oci.MediaTypeImageIndex); n != none+1 {
				t.Fatalf("an index of 3 manifests PUT ran %d store statements, an index of none %d: want one more, for its children", n, none)
			}
		})
	}
}

// putStatements returns what a PUT of a manifest costs in statements of
// meta (counted through its ObserveOps, commits aside).
func putStatements(t *testing.T, h http.Handler, meta *sqlmeta.Store) func(repo, tag string, b []byte, mt string) int64 {
	var stmts atomic.Int64
	meta.ObserveOps(func(op string, _ time.Duration, _ error) {
		if op != "commit" {
			stmts.Add(1)
		}
	})
	return func(repo, tag string, b []byte, mt string) int64 {
		t.Helper()
		stmts.Store(0)
		if w := putManifest(t, h, repo, tag, b, mt); w.Code != 201 {
			t.Fatalf("push %s: %d %s", tag, w.Code, w.Body)
		}
		return stmts.Load()
	}
}
