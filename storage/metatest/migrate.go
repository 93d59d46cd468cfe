package metatest

import (
	"fmt"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// indexDepthStep is the schema migration that added manifests.index_depth
// and computed it for the indexes already stored.
const indexDepthStep = 5

// IndexDepthMigration checks that migration's backfill: manifests are
// stored, the column and the step's record are removed behind the store's
// back (as if the data predated it), and reopening runs the step again.
// open opens the same database each time; exec runs raw SQL on it.
func IndexDepthMigration(t *testing.T, open func(t *testing.T) storage.Store, exec func(s storage.Store, stmt string) error) {
	const ociIndex, dockerList = oci.MediaTypeImageIndex, oci.MediaTypeDockerManifestList
	s := open(t)
	img := manifest("r", "image")
	put(t, s, img)
	// A chain of 11 indexes over the image, each also listing the image.
	chain := []*storage.Manifest{img}
	for i := 1; i <= 11; i++ {
		m := manifest("r", fmt.Sprint("index ", i))
		m.MediaType = ociIndex
		if i%2 == 0 {
			m.MediaType = dockerList
		}
		m.Refs = []digest.Digest{img.Digest, chain[i-1].Digest}
		put(t, s, m)
		chain = append(chain, m)
	}
	// Shallow beside deep: the deepest child counts.
	mixed := manifest("r", "mixed")
	mixed.MediaType = ociIndex
	mixed.Refs = []digest.Digest{chain[1].Digest, chain[3].Digest, img.Digest}
	put(t, s, mixed)
	// Children are looked up in the index's own repository only.
	elsewhere := manifest("other", "elsewhere")
	elsewhere.MediaType = ociIndex
	elsewhere.Refs = []digest.Digest{chain[5].Digest}
	put(t, s, elsewhere)
	for _, stmt := range []string{
		fmt.Sprintf(`DELETE FROM schema_migrations WHERE version = %d`, indexDepthStep),
		`ALTER TABLE manifests DROP COLUMN index_depth`,
	} {
		ok(t, exec(s, stmt), "%s", stmt)
	}
	ok(t, s.Close(), "Close")

	s = open(t)
	defer s.Close()
	depth := func(m *storage.Manifest) int {
		got, err := s.GetManifest(ctx(t), m.Repo, m.Digest)
		ok(t, err, "GetManifest %s", m.Digest)
		return got.IndexDepth
	}
	for i, m := range chain {
		if want := min(i, 9); depth(m) != want {
			t.Errorf("index at level %d: depth %d after the migration, want %d", i, depth(m), want)
		}
	}
	if d := depth(mixed); d != 4 {
		t.Errorf("index over levels 1 and 3: depth %d, want 4", d)
	}
	if d := depth(elsewhere); d != 1 {
		t.Errorf("index whose child is in another repository: depth %d, want 1", d)
	}
}
