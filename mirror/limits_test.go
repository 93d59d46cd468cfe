package mirror_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/mirror"
	"github.com/packreg/packreg/oci"
)

// endless is a hostile Source: its referrers never end, its indexes nest
// fifty deep, or a subject has more referrers than anyone needs. It
// stops by itself after maxMade manifests, so that an engine without
// caps fails the test instead of running forever.
type endless struct {
	mode string // "chain", "nesting" or "wide"
	wide int

	mu   sync.Mutex
	docs map[digest.Digest][]byte
	root Descriptor
	made int
	read int // referrer manifests read
}

type Descriptor = oci.Descriptor

const maxMade = 200

var emptyConfig = []byte("{}")

func newEndless(mode string) *endless {
	e := &endless{mode: mode, wide: 1001, docs: map[digest.Digest][]byte{}}
	image := e.add(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": oci.NewDescriptor("application/vnd.oci.empty.v1+json", sha(emptyConfig), 2), "layers": []any{}})
	e.root = image
	if mode == "nesting" {
		for range 50 {
			e.root = e.add(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
				"manifests": []Descriptor{e.root}})
		}
	}
	return e
}

func (e *endless) add(doc map[string]any) Descriptor {
	b, _ := json.Marshal(doc)
	d := oci.NewDescriptor(doc["mediaType"].(string), sha(b), int64(len(b)))
	e.docs[sha(b)] = b
	return d
}

func (e *endless) Resolve(_ context.Context, _, ref string) (Descriptor, error) {
	if ref == "1.0.0" {
		return e.root, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if d, err := digest.Parse(ref); err == nil && e.docs[d] != nil {
		var doc struct{ MediaType string }
		json.Unmarshal(e.docs[d], &doc)
		return oci.NewDescriptor(doc.MediaType, d, int64(len(e.docs[d]))), nil
	}
	return Descriptor{}, mirror.ErrNotFound
}

func (e *endless) Manifest(ctx context.Context, repo string, d digest.Digest) ([]byte, Descriptor, error) {
	desc, err := e.Resolve(ctx, repo, d.String())
	if err != nil {
		return nil, desc, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if d != dg(e.root) {
		e.read++
	}
	return e.docs[d], desc, nil
}

func (e *endless) Blob(_ context.Context, _ string, d digest.Digest) (io.ReadCloser, error) {
	if d == sha(emptyConfig) {
		return io.NopCloser(strings.NewReader("{}")), nil
	}
	return nil, mirror.ErrNotFound
}

func (e *endless) Referrers(_ context.Context, _ string, subject digest.Digest) ([]Descriptor, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	switch {
	case e.mode == "chain":
		n = 1
	case e.mode == "wide" && subject == dg(e.root):
		n = e.wide
	}
	var out []Descriptor
	for i := range n {
		if e.made++; e.made > maxMade {
			return nil, fmt.Errorf("test: %d referrers made and still walking", maxMade)
		}
		d := e.add(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
			"artifactType": "application/vnd.example.sig",
			"config":       oci.NewDescriptor("application/vnd.oci.empty.v1+json", sha(emptyConfig), 2),
			"layers":       []any{}, "subject": oci.NewDescriptor("application/vnd.oci.image.manifest.v1+json", subject, 0),
			"annotations": map[string]string{"n": fmt.Sprint(e.made, "-", i)}})
		d.ArtifactType = "application/vnd.example.sig"
		out = append(out, d)
		if e.mode == "wide" {
			e.made-- // wide descriptors are cheap; only reads count
		}
	}
	return out, nil
}

func (e *endless) Tags(context.Context, string) ([]string, error) { return nil, nil }

// TestCopyLimits: a hostile source fails the version with ErrLimit naming
// the limit, after bounded work.
func TestCopyLimits(t *testing.T) {
	for _, c := range []struct {
		mode, limit string
	}{
		{"chain", "limit: referrer depth"},
		{"nesting", "limit: index depth"},
		{"wide", "limit: referrers per version"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			src := newEndless(c.mode)
			dst := newTestReg(t)
			_, err := mirror.NewEngine(src, dst.local(), mirror.EngineOptions{Retry: mirror.Retry{Attempts: 1}}).
				Copy(context.Background(), mirror.Job{SrcRepo: "acme/x", DstRepo: "acme/x", Ref: "1.0.0"})
			if !errors.Is(err, mirror.ErrLimit) || !strings.Contains(err.Error(), c.limit) {
				t.Fatalf("copy: %v; want ErrLimit naming %q", err, c.limit)
			}
			if src.read > 8 {
				t.Fatalf("%d manifests read before the limit stopped the walk", src.read)
			}
		})
	}
	// Index children count too, with a limit of the caller's.
	src := newEndless("image")
	var kids []Descriptor
	for i := range 11 {
		kids = append(kids, src.add(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
			"config": oci.NewDescriptor("application/vnd.oci.empty.v1+json", sha(emptyConfig), 2),
			"layers": []any{}, "annotations": map[string]string{"n": fmt.Sprint(i)}}))
	}
	src.root = src.add(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": kids})
	_, err := mirror.NewEngine(src, newTestReg(t).local(), mirror.EngineOptions{Limits: mirror.CopyLimits{Manifests: 10}}).
		Copy(context.Background(), mirror.Job{SrcRepo: "acme/x", DstRepo: "acme/x", Ref: "1.0.0"})
	if !errors.Is(err, mirror.ErrLimit) || !strings.Contains(err.Error(), "limit: manifests per version") || src.read != 0 {
		t.Fatalf("index of 11 under a limit of 10: %v (%d read)", err, src.read)
	}
}

// TestListingLimits: listing pages and names are capped over all the
// listings of one Remote (one run), not only per listing.
func TestListingLimits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v2/_catalog":
			io.WriteString(w, `{"repositories":["a","b","c"]}`)
		case r.URL.Query().Get("page") == "":
			w.Header().Set("Link", fmt.Sprintf(`<%s?page=2>; rel="next"`, r.URL.Path))
			io.WriteString(w, `{"tags":["1.0.0","1.0.1","1.0.2"]}`)
		default:
			io.WriteString(w, `{"tags":["2.0.0"]}`)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	rm, err := mirror.NewRemote(mirror.RemoteConfig{URL: srv.URL, Limits: mirror.Limits{ListPages: 4}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rm.Repositories(ctx); err != nil {
		t.Fatal(err)
	}
	if tags, err := rm.Tags(ctx, "a"); err != nil || len(tags) != 4 {
		t.Fatalf("tags of a: %q, %v", tags, err)
	}
	if _, err := rm.Tags(ctx, "b"); !errors.Is(err, mirror.ErrLimit) || !strings.Contains(err.Error(), "limit: listing pages") {
		t.Fatalf("the fifth page of the run: %v, want ErrLimit naming the listing pages", err)
	}
	rm, _ = mirror.NewRemote(mirror.RemoteConfig{URL: srv.URL, Limits: mirror.Limits{ListEntries: 5}})
	if _, err := rm.Tags(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := rm.Tags(ctx, "b"); !errors.Is(err, mirror.ErrLimit) || !strings.Contains(err.Error(), "limit: listed names") {
		t.Fatalf("names beyond the run's limit: %v", err)
	}
}

// TestRunTimeout: a run that goes on longer than the worker's RunTimeout
// fails, its first error naming the limit.
func TestRunTimeout(t *testing.T) {
	stuck := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // a remote that never answers
		case <-stuck:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(stuck)
	c := newPrimaryWorker(t, mirror.WorkerOptions{Tick: 100 * time.Millisecond, LeaseTTL: 2 * time.Second,
		Debounce: 50 * time.Millisecond, RunTimeout: time.Second})
	var v mirror.View
	c.call(t, "POST", "/api/v1/upstreams", map[string]any{"name": "slow", "url": slow.URL}, http.StatusCreated, &v)
	run := c.sync(t, "upstream", v.ID)
	if run.State != "failed" || len(run.Errors) == 0 || !strings.Contains(run.Errors[0], "limit: run timeout") {
		t.Fatalf("run against a remote that never answers: %+v", run)
	}
}
