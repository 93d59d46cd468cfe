package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// fetcherFunc adapts a function to registry.Fetcher.
type fetcherFunc func(ctx context.Context, repo, ref string) error

func (f fetcherFunc) FetchManifest(ctx context.Context, repo, ref string) error {
	return f(ctx, repo, ref)
}

// TestFetcher: a manifest pull that misses asks the fetcher, which stores
// the manifest through the service methods; the pull then serves it. A
// fetcher with nothing keeps the 404, and a failing one is the answer.
func TestFetcher(t *testing.T) {
	var reg *registry.Registry
	var calls atomic.Int32
	var payload []byte
	var actor atomic.Value
	fetch := fetcherFunc(func(ctx context.Context, repo, ref string) error {
		calls.Add(1)
		switch repo {
		case "up/pack":
			actor.Store(registry.ActorFrom(ctx))
			// What a pull-through upstream does: copy the closure, then the tag.
			if err := reg.PushBlob(ctx, repo, sha([]byte(`{}`)), stringsReader(`{}`)); err != nil {
				return err
			}
			if err := reg.PushBlob(ctx, repo, sha([]byte("layer")), stringsReader("layer")); err != nil {
				return err
			}
			_, err := reg.PushManifest(ctx, repo, ref, oci.MediaTypeImageManifest, payload)
			return err
		case "up/down":
			return fmt.Errorf("upstream unreachable: %w", storage.ErrUnavailable)
		}
		return fmt.Errorf("no upstream for %s: %w", repo, storage.ErrNotFound)
	})
	reg = newRegistry(t, registry.WithFetcher(fetch))
	// The manifest the upstream has, built on a scratch registry.
	scratch := newRegistry(t)
	payload = imageManifest(t, scratch, "x/y", []byte("layer"))

	w := do(t, reg, "GET", "/v2/up/pack/manifests/1.0.0", nil)
	expect(t, w, http.StatusOK, "")
	if w.Body.String() != string(payload) || w.Header().Get("Docker-Content-Digest") != sha(payload).String() {
		t.Fatalf("pulled-through manifest differs: %s", w.Body.String())
	}
	if calls.Load() != 1 {
		t.Fatalf("fetcher called %d times, want 1", calls.Load())
	}
	// The fill is the client's doing: its events name the client.
	if got, want := actor.Load(), "anonymous@192.0.2.1:1234"; got != want {
		t.Fatalf("the fill acted as %q, want %q", got, want)
	}
	// Now it is local: no more fetching.
	expect(t, do(t, reg, "HEAD", "/v2/up/pack/manifests/1.0.0", nil), http.StatusOK, "")
	expect(t, do(t, reg, "GET", "/v2/up/pack/manifests/"+sha(payload).String(), nil), http.StatusOK, "")
	if calls.Load() != 1 {
		t.Fatalf("fetcher called %d times for a stored manifest", calls.Load())
	}

	expect(t, do(t, reg, "GET", "/v2/other/pack/manifests/1.0.0", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	expect(t, do(t, reg, "HEAD", "/v2/up/down/manifests/1.0.0", nil), http.StatusServiceUnavailable, "")
	// The service method never asks: callers above the registry read what is there.
	if _, err := reg.Manifest(context.Background(), "other/pack", "2.0.0"); !errors.Is(err, oci.ErrManifestUnknown) {
		t.Fatalf("Manifest of a missing pack: %v", err)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("fetcher called %d times, want 3", n)
	}
}

// TestServiceReads covers the read methods packages above the registry use
// (mirror): blob stat and mount, referrers with the tag schema, tags and
// repositories.
func TestServiceReads(t *testing.T) {
	reg := newRegistry(t)
	ctx := context.Background()
	subject := imageManifest(t, reg, "a/pack", []byte("payload"))
	expect(t, putManifest(t, reg, "a/pack", "1.0.0", subject, oci.MediaTypeImageManifest), http.StatusCreated, "")

	size, err := reg.StatBlob(ctx, "a/pack", sha([]byte("payload")))
	if err != nil || size != 7 {
		t.Fatalf("StatBlob = %d, %v", size, err)
	}
	if _, err := reg.StatBlob(ctx, "b/pack", sha([]byte("payload"))); !errors.Is(err, oci.ErrBlobUnknown) {
		t.Fatalf("StatBlob in another repository: %v", err)
	}
	if ok, err := reg.MountBlob(ctx, "b/pack", "a/pack", sha([]byte("payload"))); !ok || err != nil {
		t.Fatalf("MountBlob = %v, %v", ok, err)
	}
	if size, err := reg.StatBlob(ctx, "b/pack", sha([]byte("payload"))); err != nil || size != 7 {
		t.Fatalf("StatBlob after mount = %d, %v", size, err)
	}
	if ok, err := reg.MountBlob(ctx, "b/pack", "a/pack", sha([]byte("nothing"))); ok || err != nil {
		t.Fatalf("MountBlob of an unknown blob = %v, %v", ok, err)
	}

	// One referrer through the API, one through the tag schema index.
	sd := desc(oci.MediaTypeImageManifest, sha(subject), int64(len(subject)))
	ref := func(kind string) []byte {
		m := map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest, "artifactType": kind,
			"config":  desc("application/vnd.oci.empty.v1+json", pushBlob(t, reg, "a/pack", []byte(`{}`)), 2),
			"layers":  []oci.Descriptor{},
			"subject": sd}
		return mustJSON(m)
	}
	api, legacy := ref("application/vnd.example.sig"), ref("application/vnd.example.sbom")
	expect(t, putManifest(t, reg, "a/pack", sha(api).String(), api, oci.MediaTypeImageManifest), http.StatusCreated, "")
	expect(t, putManifest(t, reg, "a/pack", sha(legacy).String(), legacy, oci.MediaTypeImageManifest), http.StatusCreated, "")
	idx := mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageIndex,
		"manifests": []oci.Descriptor{desc(oci.MediaTypeImageManifest, sha(legacy), int64(len(legacy)), "application/vnd.example.sbom")}})
	expect(t, putManifest(t, reg, "a/pack", "sha256-"+sha(subject).Hex(), idx, oci.MediaTypeImageIndex), http.StatusCreated, "")

	refs, err := reg.Referrers(ctx, "a/pack", sha(subject), "")
	if err != nil || len(refs) != 2 {
		t.Fatalf("Referrers = %+v, %v", refs, err)
	}
	only, _ := reg.Referrers(ctx, "a/pack", sha(subject), "application/vnd.example.sbom")
	if len(only) != 1 || digest.Digest(only[0].Digest) != sha(legacy) {
		t.Fatalf("Referrers filtered: %+v", only)
	}

	tags, err := reg.Tags(ctx, "a/pack", "", 10)
	if err != nil || len(tags) != 2 || tags[0] != "1.0.0" {
		t.Fatalf("Tags = %q, %v", tags, err)
	}
	repos, err := reg.Repositories(ctx, "", 10)
	if err != nil || len(repos) != 2 || repos[0] != "a/pack" || repos[1] != "b/pack" {
		t.Fatalf("Repositories = %q, %v", repos, err)
	}
	if _, err := reg.Tags(ctx, "Bad Name", "", 10); err == nil {
		t.Fatal("Tags accepted an invalid name")
	}
	if _, err := reg.StatBlob(ctx, "a/pack", sha([]byte("x"))); !errors.Is(err, oci.ErrBlobUnknown) {
		t.Fatalf("StatBlob unknown: %v", err)
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
