package pack_test

import (
	"encoding/json"
	"github.com/packreg/packreg/digest"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/pack"
	"github.com/packreg/packreg/storage"
)

// TestListPageBytes pins the exact bytes of a GET /api/v1/packs page, as
// apierr writes it (field names and order, indentation, times, empty
// files, escapes), so that a change to how a page is encoded shows here
// if it changes a byte.
func TestListPageBytes(t *testing.T) {
	page := pack.VersionList{Items: []pack.Version{
		{Name: "acme/rules", Version: "1.2.0", Digest: "sha256:aa", MediaType: "application/vnd.oci.image.manifest.v1+json",
			ArtifactType: "application/vnd.packreg.pack.v1", Size: 600, TotalSize: 4000, Status: storage.PackDeprecated,
			StatusReason: "use <2.0> & later", Description: "été \"rules\"", Labels: map[string]string{"tier": "gold", "a": "b"},
			CreatedAt: pack.Timestamp(time.Date(2026, 12, 3, 15, 42, 1, 123456789, time.UTC)), UpdatedAt: pack.Timestamp(time.Date(2026, 12, 3, 15, 42, 2, 0, time.UTC)),
			Files:           []storage.PackFile{{Name: "rules.yaml", Digest: "sha256:bb", Size: 3400, MediaType: "application/vnd.packreg.pack.file.v1"}},
			SignatureReport: &pack.SignatureReport{Verification: "unsigned", Signatures: []string{}, Attestations: []map[string]any{{"status": "missing"}}}},
		{Name: "acme/b", Version: "0.0.1", Digest: "sha256:cc", Status: storage.PackActive,
			CreatedAt: pack.Timestamp(time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.FixedZone("", 3600))), Files: []storage.PackFile{}},
	}, Next: "djE6MTox"}
	w := httptest.NewRecorder()
	apierr.JSON(w, 200, &page)
	const want = `{
  "items": [
    {
      "name": "acme/rules",
      "version": "1.2.0",
      "digest": "sha256:aa",
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "artifactType": "application/vnd.packreg.pack.v1",
      "size": 600,
      "totalSize": 4000,
      "status": "deprecated",
      "statusReason": "use \u003c2.0\u003e \u0026 later",
      "description": "été \"rules\"",
      "labels": {
        "a": "b",
        "tier": "gold"
      },
      "createdAt": "2026-12-03T15:42:01.123456789Z",
      "updatedAt": "2026-12-03T15:42:02Z",
      "files": [
        {
          "name": "rules.yaml",
          "digest": "sha256:bb",
          "size": 3400,
          "mediaType": "application/vnd.packreg.pack.file.v1"
        }
      ],
      "verification": "unsigned",
      "signatures": [],
      "attestations": [
        {
          "status": "missing"
        }
      ]
    },
    {
      "name": "acme/b",
      "version": "0.0.1",
      "digest": "sha256:cc",
      "mediaType": "",
      "artifactType": "",
      "size": 0,
      "totalSize": 0,
      "status": "active",
      "statusReason": "",
      "createdAt": "2026-01-02T03:04:05.6+01:00",
      "updatedAt": "0001-01-01T00:00:00Z",
      "files": []
    }
  ],
  "next": "djE6MTox"
}
`
	if got := w.Body.String(); got != want {
		t.Errorf("page:\n%s\nwant:\n%s", got, want)
	}
	// Clients (the CLI, mirror) read the times back as they were.
	var back pack.VersionList
	if err := json.Unmarshal([]byte(want), &back); err != nil {
		t.Fatal(err)
	}
	for i, v := range back.Items {
		if c, u := v.CreatedAt.Time(), v.UpdatedAt.Time(); !c.Equal(page.Items[i].CreatedAt.Time()) || !u.Equal(page.Items[i].UpdatedAt.Time()) {
			t.Errorf("item %d read back with times %v, %v; want %v, %v", i, c, u, page.Items[i].CreatedAt.Time(), page.Items[i].UpdatedAt.Time())
		}
	}
}

// BenchmarkListPageEncode is the writing of a 100-version page alone, as
// a server does it (apierr.JSON), without the store.
func BenchmarkListPageEncode(b *testing.B) {
	v := pack.Version{Name: "bench/packs/p001", Version: "1.0.17", Digest: "sha256:" + strings.Repeat("ab", 32),
		MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: "application/vnd.packreg.pack.v1",
		Size: 600, TotalSize: 4000, Status: storage.PackActive,
		CreatedAt: pack.Timestamp(time.Now()), UpdatedAt: pack.Timestamp(time.Now()),
		Files:           []storage.PackFile{{Name: "rules.yaml", Digest: digest.Digest("sha256:" + strings.Repeat("cd", 32)), Size: 1024, MediaType: "application/vnd.packreg.pack.file.v1"}},
		SignatureReport: &pack.SignatureReport{Verification: "unsigned", Signatures: []string{}, Attestations: []string{}}}
	page := pack.VersionList{Items: slices.Repeat([]pack.Version{v}, 100), Next: "djE6MTox"}
	w := discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		apierr.JSON(w, 200, &page)
	}
}

// discard is a ResponseWriter that drops the body, as a socket would take it.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(p []byte) (int, error) { return len(p), nil }
func (d discard) WriteHeader(int)             {}
