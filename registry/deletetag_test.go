package registry_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
)

// TestDeleteTagService: the service's tag delete is DELETE /v2/ of a tag:
// the tag goes, the manifest stays, subscribers hear tag.delete by the
// context's actor; a bad name or tag is refused before the store, a
// missing tag is MANIFEST_UNKNOWN. It is the server's own door, open
// while the /v2/ route is closed by delete_enabled: false.
func TestDeleteTagService(t *testing.T) {
	var mu sync.Mutex
	var got []registry.Event
	reg := newRegistry(t, registry.WithDeleteEnabled(false), registry.WithSubscriber(func(_ context.Context, e registry.Event) {
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
	}))
	m := imageManifest(t, reg, "acme/app", []byte("layer"))
	expect(t, putManifest(t, reg, "acme/app", "1.0.0", m, "application/vnd.oci.image.manifest.v1+json"), http.StatusCreated, "")
	expect(t, do(t, reg, "DELETE", "/v2/acme/app/manifests/1.0.0", nil), http.StatusMethodNotAllowed, "UNSUPPORTED")

	ctx := registry.WithActor(t.Context(), "retention")
	if err := reg.DeleteTag(ctx, "acme/app", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	expect(t, do(t, reg, "GET", "/v2/acme/app/manifests/1.0.0", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	expect(t, do(t, reg, "GET", "/v2/acme/app/manifests/"+sha(m).String(), nil), http.StatusOK, "")
	mu.Lock()
	last := got[len(got)-1]
	mu.Unlock()
	if last.Action != registry.ActionTagDelete || last.Actor != "retention" || last.Tag != "1.0.0" || last.Repo != "acme/app" {
		t.Fatalf("last event %+v", last)
	}
	for _, c := range []struct {
		repo, tag string
		want      error
	}{
		{"acme/app", "1.0.0", oci.ErrManifestUnknown},
		{"Acme/App", "1.0.0", oci.ErrNameInvalid},
		{"acme/app", "-x", oci.ErrManifestInvalid},
	} {
		if err := reg.DeleteTag(ctx, c.repo, c.tag); !errors.Is(err, c.want) {
			t.Errorf("DeleteTag(%q, %q) = %v, want %v", c.repo, c.tag, err, c.want)
		}
	}
}
