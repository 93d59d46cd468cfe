package oci_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
)

// An empty referrers answer is "manifests":[], never null: clients range
// over it.
func TestReferrersIndexJSON(t *testing.T) {
	b, err := json.Marshal(oci.ReferrersIndex(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`; string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
}

// NewManifest writes what packs and signatures always wrote: the same
// field order, so republishing the same content gives the same digest.
func TestNewManifestJSON(t *testing.T) {
	d := digest.FromBytes(digest.SHA256, []byte("{}"))
	m := oci.NewManifest(oci.NewDescriptor(oci.MediaTypeEmptyJSON, d, 2), nil)
	m.ArtifactType = oci.ArtifactTypePack
	m.Annotations = map[string]string{oci.AnnotationCreated: "2026-01-01T00:00:00Z"}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.packreg.pack.v1",` +
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + string(d) + `","size":2},"layers":[],` +
		`"annotations":{"org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}`
	if string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
}

// Document tells absent from empty, which validation needs and
// image-spec's value fields cannot say.
func TestDocument(t *testing.T) {
	var doc oci.Document
	body := `{"schemaVersion":2,"config":{"mediaType":"a","digest":"d","size":0},"layers":[],"manifests":[{"mediaType":"m","digest":"x"}]}`
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Layers == nil || len(*doc.Layers) != 0 || doc.Manifests == nil || doc.Subject != nil {
		t.Fatalf("layers %v, manifests %v, subject %v", doc.Layers, doc.Manifests, doc.Subject)
	}
	if blobs := doc.Blobs(); len(blobs) != 1 || blobs[0].Size == nil || *blobs[0].Size != 0 {
		t.Fatalf("blobs %+v: the config's size 0 must be present", blobs)
	}
	kids := doc.Children()
	if len(kids) != 1 || kids[0].Size != nil {
		t.Fatalf("children %+v: the child's size must be absent", kids)
	}
	if d := kids[0].Descriptor(); d.MediaType != "m" || d.Digest != "x" || d.Size != 0 {
		t.Fatalf("descriptor %+v", d)
	}
	// What image-spec's types refuse, Document refuses too: later readers
	// (pack policy, signature parsing) decode stored manifests with them.
	for bad, spec := range map[string]any{`{"layers":[{"data":"not base64!"}]}`: &oci.Manifest{},
		`{"manifests":[{"platform":"linux"}]}`: &oci.Index{}} {
		var d oci.Document
		if json.Unmarshal([]byte(bad), &d) == nil || json.Unmarshal([]byte(bad), spec) == nil {
			t.Errorf("%s decodes", bad)
		}
	}
	if got := strings.Join(oci.ManifestMediaTypes(), ","); !strings.Contains(got, oci.MediaTypeDockerManifestList) {
		t.Fatalf("manifest media types %s", got)
	}
}

func TestMediaTypePredicates(t *testing.T) {
	for _, c := range []struct {
		mt                         string
		index, image, manifest, nd bool
	}{
		{oci.MediaTypeImageManifest, false, true, true, false},
		{oci.MediaTypeDockerManifest, false, true, true, false},
		{oci.MediaTypeImageIndex, true, false, true, false},
		{oci.MediaTypeDockerManifestList, true, false, true, false},
		{"application/vnd.docker.distribution.manifest.v1+json", false, false, false, false},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar", false, false, false, true},
		{"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", false, false, false, true},
		{"application/json", false, false, false, false},
	} {
		if oci.IsIndex(c.mt) != c.index || oci.IsImageManifest(c.mt) != c.image || oci.IsManifest(c.mt) != c.manifest || oci.NonDistributable(c.mt) != c.nd {
			t.Errorf("%s: index %v image %v manifest %v nondistributable %v", c.mt,
				oci.IsIndex(c.mt), oci.IsImageManifest(c.mt), oci.IsManifest(c.mt), oci.NonDistributable(c.mt))
		}
	}
	if !oci.IsPack(oci.ArtifactTypePack) || !oci.IsPack(oci.MediaTypePackConfig) || oci.IsPack(oci.MediaTypePackFile) {
		t.Error("IsPack")
	}
	if !oci.IsSigstoreBundle(oci.MediaTypeSigstoreBundle) || !oci.IsSigstoreBundle("application/vnd.dev.sigstore.bundle+json;version=0.1") ||
		oci.IsSigstoreBundle("application/vnd.dev.sigstore.bundle+json;version=9") {
		t.Error("IsSigstoreBundle")
	}
}
