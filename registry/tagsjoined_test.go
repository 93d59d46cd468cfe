package registry_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// plainTags hides storage.TagsJoiner: its tags lists take ListTags's slice.
type plainTags struct{ storage.Metadata }

// TestTagsListJoinedAnswersAsListTags: a store's joined page
// (storage.TagsJoiner) answers the same status, body bytes and Link as
// ListTags's slice, on every kind of page.
func TestTagsListJoinedAnswersAsListTags(t *testing.T) {
	blobs, meta, _ := teststores.Open(t)
	var _ storage.TagsJoiner = meta // else the test compares a path with itself
	joined := registry.New(blobs, meta, registry.WithMaxPageSize(50))
	plain := registry.New(blobs, plainTags{meta}, registry.WithMaxPageSize(50))
	m := imageManifest(t, joined, "paged")
	for i := range 60 {
		expect(t, putManifest(t, joined, "paged", fmt.Sprintf("v%d", i), m, oci.MediaTypeImageManifest), 201, "")
	}
	imageManifest(t, joined, "untagged")
	for _, path := range []string{"/v2/paged/tags/list", "/v2/untagged/tags/list", "/v2/unknown/tags/list"} {
		for _, q := range []string{"", "?n=0", "?n=1", "?n=7", "?n=49", "?n=50", "?n=59", "?n=60", "?n=61",
			"?n=7&last=v1", "?n=2&last=v58", "?last=v59", "?last=v", "?last=zzz", "?n=3&last=v5"} {
			a, b := do(t, joined, "GET", path+q, nil), do(t, plain, "GET", path+q, nil)
			if a.Code != b.Code || !bytes.Equal(a.Body.Bytes(), b.Body.Bytes()) ||
				a.Header().Get("Link") != b.Header().Get("Link") ||
				a.Header().Get("Content-Length") != b.Header().Get("Content-Length") {
				t.Errorf("GET %s%s: joined %d %q Link %q\nwant ListTags's %d %q Link %q", path, q,
					a.Code, a.Body, a.Header().Get("Link"), b.Code, b.Body, b.Header().Get("Link"))
			}
		}
	}
}
