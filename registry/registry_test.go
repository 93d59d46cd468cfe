package registry_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
)

func TestBase(t *testing.T) {
	h := newRegistry(t)
	w := do(t, h, "GET", "/v2/", nil)
	expect(t, w, 200, "")
	if w.Header().Get("Docker-Distribution-Api-Version") != "registry/2.0" || w.Header().Get("X-Request-Id") == "" {
		t.Fatalf("headers %v", w.Header())
	}
}

func TestManifestRoundTrip(t *testing.T) {
	h := newRegistry(t)
	repo := "acme/rules"
	m := imageManifest(t, h, repo, []byte("rules: []\n"))
	d := sha(m)
	w := putManifest(t, h, repo, "1.0.0?tag=latest&tag=stable", m, oci.MediaTypeImageManifest)
	expect(t, w, 201, "")
	if w.Header().Get("Docker-Content-Digest") != d.String() || w.Header().Get("Location") != "/v2/"+repo+"/manifests/"+d.String() {
		t.Fatalf("headers %v", w.Header())
	}
	if got := w.Header().Values("OCI-Tag"); !slices.Equal(got, []string{"latest", "stable"}) {
		t.Fatalf("OCI-Tag %v", got)
	}
	for _, ref := range []string{"1.0.0", "latest", "stable", d.String()} {
		w := do(t, h, "GET", "/v2/"+repo+"/manifests/"+ref, nil)
		expect(t, w, 200, "")
		if w.Body.String() != string(m) || w.Header().Get("Content-Type") != oci.MediaTypeImageManifest ||
			w.Header().Get("Docker-Content-Digest") != d.String() {
			t.Fatalf("GET %s: %v %q", ref, w.Header(), w.Body.String())
		}
		w = do(t, h, "HEAD", "/v2/"+repo+"/manifests/"+ref, nil)
		if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") != fmt.Sprint(len(m)) {
			t.Fatalf("HEAD %s: %d %v", ref, w.Code, w.Header())
		}
	}
	// Byte-exact: a differently formatted but equivalent manifest is another digest.
	spaced := []byte(strings.Replace(string(m), ",", ", ", 1))
	w = putManifest(t, h, repo, "spaced", spaced, oci.MediaTypeImageManifest)
	expect(t, w, 201, "")
	if w.Header().Get("Docker-Content-Digest") != sha(spaced).String() {
		t.Fatal("re-encoded manifest")
	}
	// Tag delete leaves the manifest; manifest delete removes its tags.
	expect(t, do(t, h, "DELETE", "/v2/"+repo+"/manifests/stable", nil), 202, "")
	expect(t, do(t, h, "GET", "/v2/"+repo+"/manifests/stable", nil), 404, "MANIFEST_UNKNOWN")
	expect(t, do(t, h, "GET", "/v2/"+repo+"/manifests/latest", nil), 200, "")
	expect(t, do(t, h, "DELETE", "/v2/"+repo+"/manifests/"+d.String(), nil), 202, "")
	expect(t, do(t, h, "GET", "/v2/"+repo+"/manifests/latest", nil), 404, "MANIFEST_UNKNOWN")
	expect(t, do(t, h, "GET", "/v2/"+repo+"/manifests/"+d.String(), nil), 404, "MANIFEST_UNKNOWN")
	expect(t, do(t, h, "DELETE", "/v2/"+repo+"/manifests/"+d.String(), nil), 404, "MANIFEST_UNKNOWN")
}

func TestSHA512(t *testing.T) {
	h := newRegistry(t)
	b := []byte("sha512 content")
	d := registryDigest512(b)
	expect(t, do(t, h, "POST", "/v2/s/blobs/uploads/?digest="+d, b), 201, "")
	w := do(t, h, "GET", "/v2/s/blobs/"+d, nil)
	expect(t, w, 200, "")
	// Chunked with the digest known only at the end: the store re-hashes.
	w = do(t, h, "POST", "/v2/s/blobs/uploads/", nil)
	loc := w.Header().Get("Location")
	expect(t, do(t, h, "PATCH", loc, []byte("other ")), 202, "")
	d2 := registryDigest512([]byte("other bytes"))
	expect(t, do(t, h, "PUT", loc+"?digest="+d2, []byte("bytes")), 201, "")
	m := imageManifest(t, h, "s", b)
	md := registryDigest512(m)
	expect(t, putManifest(t, h, "s", md, m, oci.MediaTypeImageManifest), 201, "")
	expect(t, do(t, h, "GET", "/v2/s/manifests/"+md, nil), 200, "")
}

func TestIndexAndDockerTypes(t *testing.T) {
	h := newRegistry(t)
	repo := "multi"
	m := imageManifest(t, h, repo, []byte("a"))
	expect(t, putManifest(t, h, repo, sha(m).String(), m, oci.MediaTypeImageManifest), 201, "")
	idx := mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageIndex,
		"manifests": []oci.Descriptor{desc(oci.MediaTypeImageManifest, sha(m), int64(len(m)))}})
	expect(t, putManifest(t, h, repo, "idx", idx, oci.MediaTypeImageIndex), 201, "")
	cfg := pushBlob(t, h, repo, []byte(`{"architecture":"amd64"}`))
	dm := mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeDockerManifest,
		"config": desc("application/vnd.docker.container.image.v1+json", cfg, 24), "layers": []oci.Descriptor{}})
	expect(t, putManifest(t, h, repo, "docker", dm, oci.MediaTypeDockerManifest), 201, "")
	list := mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeDockerManifestList,
		"manifests": []oci.Descriptor{desc(oci.MediaTypeDockerManifest, sha(dm), int64(len(dm)))}})
	expect(t, putManifest(t, h, repo, "list", list, oci.MediaTypeDockerManifestList), 201, "")
	w := do(t, h, "GET", "/v2/"+repo+"/manifests/list", nil)
	if w.Header().Get("Content-Type") != oci.MediaTypeDockerManifestList {
		t.Fatalf("content type %q", w.Header().Get("Content-Type"))
	}
}

func TestReferrers(t *testing.T) {
	h := newRegistry(t)
	repo := "ref/demo"
	subj := imageManifest(t, h, repo, []byte("pack"))
	sd := sha(subj)
	expect(t, putManifest(t, h, repo, "1.0.0", subj, oci.MediaTypeImageManifest), 201, "")
	empty := pushBlob(t, h, repo, []byte("{}"))
	referrer := func(artifactType, cfgType, note string) []byte {
		l := pushBlob(t, h, repo, []byte(note))
		m := map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest,
			"config":      desc(cfgType, empty, 2),
			"layers":      []oci.Descriptor{desc("application/json", l, int64(len(note)))},
			"subject":     desc(oci.MediaTypeImageManifest, sd, int64(len(subj))),
			"annotations": map[string]string{"note": note}}
		if artifactType != "" {
			m["artifactType"] = artifactType
		}
		return mustJSON(m)
	}
	sig := referrer("application/vnd.example.sig", "application/vnd.oci.empty.v1+json", "sig")
	sbom := referrer("", "application/vnd.example.sbom.config", "sbom")
	for _, r := range [][]byte{sig, sbom} {
		w := putManifest(t, h, repo, sha(r).String(), r, oci.MediaTypeImageManifest)
		expect(t, w, 201, "")
		if w.Header().Get("OCI-Subject") != sd.String() {
			t.Fatalf("OCI-Subject %q", w.Header().Get("OCI-Subject"))
		}
	}
	get := func(q string) (map[string]string, http.Header) {
		w := do(t, h, "GET", "/v2/"+repo+"/referrers/"+sd.String()+q, nil)
		expect(t, w, 200, "")
		var idx oci.Index
		if err := json.Unmarshal(w.Body.Bytes(), &idx); err != nil || idx.MediaType != oci.MediaTypeImageIndex {
			t.Fatalf("referrers body %s", w.Body.String())
		}
		got := map[string]string{}
		for _, m := range idx.Manifests {
			got[m.Digest.String()] = m.ArtifactType
			if m.Annotations["note"] == "" {
				t.Errorf("referrer %s lost its annotations", m.Digest)
			}
		}
		return got, w.Header()
	}
	all, hdr := get("")
	if len(all) != 2 || all[sha(sig).String()] != "application/vnd.example.sig" || all[sha(sbom).String()] != "application/vnd.example.sbom.config" {
		t.Fatalf("referrers %v", all)
	}
	if hdr.Get("OCI-Filters-Applied") != "" {
		t.Fatal("filter header without a filter")
	}
	filtered, hdr := get("?artifactType=application/vnd.example.sig")
	if len(filtered) != 1 || hdr.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatalf("filtered %v %v", filtered, hdr)
	}
	// Unknown subject: empty index, never 404.
	none, _ := get("")
	_ = none
	w := do(t, h, "GET", "/v2/"+repo+"/referrers/"+sha([]byte("x")).String(), nil)
	expect(t, w, 200, "")
	if !strings.Contains(w.Body.String(), `"manifests":[]`) {
		t.Fatalf("unknown subject body %s", w.Body.String())
	}
	// A subject that does not exist yet is accepted and listed.
	ghost := sha([]byte("ghost"))
	l := pushBlob(t, h, repo, []byte("g"))
	early := mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest, "artifactType": "a/b",
		"config": desc("application/vnd.oci.empty.v1+json", empty, 2),
		"layers": []oci.Descriptor{desc("application/json", l, 1)}, "subject": desc(oci.MediaTypeImageManifest, ghost, 9)})
	w = putManifest(t, h, repo, sha(early).String(), early, oci.MediaTypeImageManifest)
	expect(t, w, 201, "")
	w = do(t, h, "GET", "/v2/"+repo+"/referrers/"+ghost.String(), nil)
	if !strings.Contains(w.Body.String(), sha(early).String()) {
		t.Fatalf("early referrer not listed: %s", w.Body.String())
	}
}

// TestTagSchemaReferrers: an index tagged sha256-<hex> (older clients) shows
// in the referrers API, with artifactType taken from the stored manifest.
func TestTagSchemaReferrers(t *testing.T) {
	h := newRegistry(t)
	repo := "legacy"
	subj := imageManifest(t, h, repo, []byte("pack"))
	sd := sha(subj)
	expect(t, putManifest(t, h, repo, "1.0.0", subj, oci.MediaTypeImageManifest), 201, "")
	empty := pushBlob(t, h, repo, []byte("{}"))
	l := pushBlob(t, h, repo, []byte("bundle"))
	ref := mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest,
		"artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
		"config":       desc("application/vnd.oci.empty.v1+json", empty, 2),
		"layers":       []oci.Descriptor{desc("application/vnd.dev.sigstore.bundle.v0.3+json", l, 6)}})
	expect(t, putManifest(t, h, repo, sha(ref).String(), ref, oci.MediaTypeImageManifest), 201, "")
	// The ggcr quirk: the fallback index names the config type as artifactType.
	idx := mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageIndex,
		"manifests": []oci.Descriptor{desc(oci.MediaTypeImageManifest, sha(ref), int64(len(ref)), "application/vnd.oci.empty.v1+json")}})
	expect(t, putManifest(t, h, repo, "sha256-"+sd.Hex(), idx, oci.MediaTypeImageIndex), 201, "")
	w := do(t, h, "GET", "/v2/"+repo+"/referrers/"+sd.String()+"?artifactType=application/vnd.dev.sigstore.bundle.v0.3%2Bjson", nil)
	expect(t, w, 200, "")
	if !strings.Contains(w.Body.String(), sha(ref).String()) || !strings.Contains(w.Body.String(), `"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"`) {
		t.Fatalf("tag-schema referrer missing: %s", w.Body.String())
	}
}

// TestTagSchemaReferrersSHA512: the fallback tag of a sha512 subject is
// sha512-<the first 64 hex digits>, as the distribution spec cuts <ref>
// (the whole digest would make a 135-character tag, which no registry
// holds), and its index shows in the referrers API.
func TestTagSchemaReferrersSHA512(t *testing.T) {
	h := newRegistry(t)
	repo := "legacy/sha512"
	subj := imageManifest(t, h, repo, []byte("pack"))
	sd := digest.FromBytes(digest.SHA512, subj)
	expect(t, putManifest(t, h, repo, sd.String(), subj, oci.MediaTypeImageManifest), 201, "")
	ref := imageManifest(t, h, repo, []byte("signature"))
	expect(t, putManifest(t, h, repo, sha(ref).String(), ref, oci.MediaTypeImageManifest), 201, "")
	idx := mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageIndex,
		"manifests": []oci.Descriptor{desc(oci.MediaTypeImageManifest, sha(ref), int64(len(ref)), "application/vnd.example.sig")}})
	expect(t, putManifest(t, h, repo, "sha512-"+sd.Hex()[:64], idx, oci.MediaTypeImageIndex), 201, "")
	w := do(t, h, "GET", "/v2/"+repo+"/referrers/"+sd.String(), nil)
	expect(t, w, 200, "")
	var got oci.Index
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || len(got.Manifests) != 1 || string(got.Manifests[0].Digest) != sha(ref).String() {
		t.Fatalf("referrers of a sha512 subject: %s", w.Body.String())
	}
}

func TestTagPagination(t *testing.T) {
	h := newRegistry(t, registry.WithMaxPageSize(50))
	repo := "paged"
	m := imageManifest(t, h, repo)
	var want []string
	for i := range 120 {
		want = append(want, fmt.Sprintf("v%d", i))
	}
	want = append(want, "v1.0", "v1.0.0", "v1.0.0-rc1", "v", "V")
	for _, tag := range want {
		expect(t, putManifest(t, h, repo, tag, m, oci.MediaTypeImageManifest), 201, "")
	}
	slices.Sort(want)
	list := func(q string) ([]string, string) {
		w := do(t, h, "GET", "/v2/"+repo+"/tags/list"+q, nil)
		expect(t, w, 200, "")
		var body struct {
			Name string
			Tags []string
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Name != repo || body.Tags == nil {
			t.Fatalf("body %s", w.Body.String())
		}
		return body.Tags, w.Header().Get("Link")
	}
	var got []string
	q := "?n=7"
	for pages := 0; ; pages++ {
		tags, link := list(q)
		got = append(got, tags...)
		if link == "" {
			break
		}
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
		q = link[strings.Index(link, "?"):strings.Index(link, ">")]
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged tags\n got %v\nwant %v", got, want)
	}
	if tags, link := list("?n=0"); len(tags) != 0 || link != "" {
		t.Fatalf("n=0: %v %q", tags, link)
	}
	if tags, link := list("?n=1000000000"); len(tags) != 50 || link == "" {
		t.Fatalf("huge n not clamped: %d %q", len(tags), link)
	}
	if tags, _ := list("?n=99999999999999999999999"); len(tags) != 50 {
		t.Fatalf("overflowing n: %d", len(tags))
	}
	if tags, link := list("?last=" + want[len(want)-1]); len(tags) != 0 || link != "" {
		t.Fatalf("after last: %v %q", tags, link)
	}
	for _, bad := range []string{"?n=-1", "?n=abc", "?last=" + strings.Repeat("x", 256)} {
		expect(t, do(t, h, "GET", "/v2/"+repo+"/tags/list"+bad, nil), 400, "")
		expect(t, do(t, h, "GET", "/v2/_catalog"+bad, nil), 400, "")
	}
}

func TestCatalog(t *testing.T) {
	h := newRegistry(t)
	names := []string{"a", "a/b", "a-b", "b", "a/b/c"}
	for _, n := range names {
		pushBlob(t, h, n, []byte(n))
	}
	slices.Sort(names)
	var got []string
	q := "?n=2"
	for {
		w := do(t, h, "GET", "/v2/_catalog"+q, nil)
		expect(t, w, 200, "")
		var body struct{ Repositories []string }
		json.Unmarshal(w.Body.Bytes(), &body)
		got = append(got, body.Repositories...)
		link := w.Header().Get("Link")
		if link == "" {
			break
		}
		q = link[strings.Index(link, "?"):strings.Index(link, ">")]
	}
	if !slices.Equal(got, names) {
		t.Fatalf("catalog %v, want %v", got, names)
	}
}

func TestUploadLifecycle(t *testing.T) {
	h := newRegistry(t)
	repo := "life"
	w := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/", nil)
	expect(t, w, 202, "")
	loc := w.Header().Get("Location")
	if w.Header().Get("Range") != "0-0" || w.Header().Get("Docker-Upload-Uuid") == "" {
		t.Fatalf("start headers %v", w.Header())
	}
	expect(t, do(t, h, "PATCH", loc, []byte("hello ")), 202, "")
	w = do(t, h, "GET", loc, nil)
	expect(t, w, 204, "")
	if w.Header().Get("Range") != "0-5" {
		t.Fatalf("status Range %q", w.Header().Get("Range"))
	}
	expect(t, do(t, h, "DELETE", loc, nil), 204, "")
	expect(t, do(t, h, "GET", loc, nil), 404, "BLOB_UPLOAD_UNKNOWN")
	// Blob delete unlinks it from the repository only.
	d := pushBlob(t, h, repo, []byte("doomed"))
	pushBlob(t, h, "keeper", []byte("doomed"))
	expect(t, do(t, h, "DELETE", "/v2/"+repo+"/blobs/"+d.String(), nil), 202, "")
	expect(t, do(t, h, "GET", "/v2/"+repo+"/blobs/"+d.String(), nil), 404, "BLOB_UNKNOWN")
	expect(t, do(t, h, "GET", "/v2/keeper/blobs/"+d.String(), nil), 200, "")
	expect(t, do(t, h, "DELETE", "/v2/"+repo+"/blobs/"+d.String(), nil), 404, "BLOB_UNKNOWN")
}
