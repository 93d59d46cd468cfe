package registry_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// putsRecorded keeps the events of every PutManifest.
type putsRecorded struct {
	storage.Metadata
	puts [][]storage.Event
}

func (p *putsRecorded) PutManifest(ctx context.Context, m *storage.Manifest, tags []string, o storage.PutManifestOptions) error {
	p.puts = append(p.puts, o.Events)
	return p.Metadata.PutManifest(ctx, m, tags, o)
}

// Every tag move is recorded with the push of its manifest into the same
// repository, in the same write: compliance skips tag moves (its
// Subscribe) on that ground, the push's event having the repository
// evaluated. A new manifest by tag, the same one by another tag, and by
// both at once (a digest reference moves none).
func TestTagMovesComeWithTheirManifestPush(t *testing.T) {
	blobs, meta, _ := teststores.Open(t)
	rec := &putsRecorded{Metadata: meta}
	reg := registry.New(blobs, rec)
	const mt = "application/vnd.oci.image.manifest.v1+json"
	m := imageManifest(t, reg, "acme/app", []byte("layer"))
	for _, ref := range []string{"1.0.0", "latest", "1.0.0", sha(m).String()} {
		expect(t, putManifest(t, reg, "acme/app", ref, m, mt), http.StatusCreated, "")
	}
	moves := 0
	for i, evs := range rec.puts {
		pushed := map[string]bool{}
		for _, e := range evs {
			if e.Action == registry.ActionManifestPush {
				pushed[e.Target+"@"+e.Digest.String()] = true
			}
		}
		for _, e := range evs {
			d, ok := registry.DecodeEvent(e)
			if !ok || d.Action != registry.ActionTagMove {
				continue
			}
			moves++
			if !pushed[d.Repo+"@"+d.Digest.String()] {
				t.Errorf("put %d records %s %s without its manifest's push: %+v", i, e.Action, e.Target, evs)
			}
		}
	}
	if moves == 0 {
		t.Fatal("no put recorded a tag move")
	}
}
