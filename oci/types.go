package oci

import (
	godigest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/packreg/packreg/digest"
)

// The shapes of image-spec, used as they are.
type (
	// Descriptor describes content: a blob or a manifest.
	Descriptor = ocispec.Descriptor
	// Manifest is an OCI image manifest.
	Manifest = ocispec.Manifest
	// Index is an OCI image index (and the referrers API's answer).
	Index = ocispec.Index
)

// NewDescriptor describes size bytes of mediaType with digest d.
func NewDescriptor(mediaType string, d digest.Digest, size int64) Descriptor {
	return Descriptor{MediaType: mediaType, Digest: godigest.Digest(d), Size: size}
}

// schema2 is the schemaVersion of every manifest and index.
func schema2() specs.Versioned { return specs.Versioned{SchemaVersion: 2} }

// NewManifest is an OCI image manifest of config and layers; layers is []
// when there are none, never null.
func NewManifest(config Descriptor, layers []Descriptor) Manifest {
	if layers == nil {
		layers = []Descriptor{}
	}
	return Manifest{Versioned: schema2(), MediaType: MediaTypeImageManifest, Config: config, Layers: layers}
}

// ReferrersIndex is the index the referrers API answers, and the one its
// fallback tag (ReferrersTag) holds: manifests is [] when empty, never
// null.
func ReferrersIndex(manifests []Descriptor) Index {
	if manifests == nil {
		manifests = []Descriptor{}
	}
	return Index{Versioned: schema2(), MediaType: MediaTypeImageIndex, Manifests: manifests}
}

// Document is a manifest or an index as a registry reads one before it
// knows which, and before it trusts it: the union of image-spec's Manifest
// and Index, with pointers where absent and empty differ. Image-spec's
// value fields cannot tell them apart, and validation must: a body with
// both manifests and layers is invalid even when one of them is [], and a
// descriptor without a size is invalid while size 0 is the empty blob.
type Document struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *DocDescriptor    `json:"config"`
	Layers        *[]DocDescriptor  `json:"layers"`
	Manifests     *[]DocDescriptor  `json:"manifests"`
	Subject       *DocDescriptor    `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// DocDescriptor is a descriptor of a Document as it was sent: the digest
// not yet parsed, the size nil when absent. Its other fields are
// image-spec's, so whatever decodes as a Document decodes as a Manifest or
// an Index too (data must be base64, a platform an object).
type DocDescriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         *int64            `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Data         []byte            `json:"data,omitempty"`
	Platform     *ocispec.Platform `json:"platform,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
}

// Blobs is what an image manifest references as blobs: its config, then
// its layers (none for an index).
func (d *Document) Blobs() []DocDescriptor {
	var out []DocDescriptor
	if d.Config != nil {
		out = append(out, *d.Config)
	}
	if d.Layers != nil {
		out = append(out, *d.Layers...)
	}
	return out
}

// Children is the manifests an index lists (none for an image manifest).
func (d *Document) Children() []DocDescriptor {
	if d.Manifests == nil {
		return nil
	}
	return *d.Manifests
}

// Descriptor is d as image-spec's Descriptor, an absent size as 0. It
// validates nothing.
func (d DocDescriptor) Descriptor() Descriptor {
	var size int64
	if d.Size != nil {
		size = *d.Size
	}
	return Descriptor{MediaType: d.MediaType, Digest: godigest.Digest(d.Digest), Size: size, URLs: d.URLs,
		Annotations: d.Annotations, Data: d.Data, Platform: d.Platform, ArtifactType: d.ArtifactType}
}

// ImageManifest is d as image-spec's Manifest, with mediaType mt (what the
// registry settled on): for a Document validated as an image manifest,
// whose config is set and whose descriptors all have sizes.
func (d *Document) ImageManifest(mt string) *Manifest {
	m := &Manifest{Versioned: schema2(), MediaType: mt, ArtifactType: d.ArtifactType, Annotations: d.Annotations,
		Layers: []Descriptor{}}
	if d.Config != nil {
		m.Config = d.Config.Descriptor()
	}
	if d.Layers != nil {
		for _, l := range *d.Layers {
			m.Layers = append(m.Layers, l.Descriptor())
		}
	}
	if d.Subject != nil {
		s := d.Subject.Descriptor()
		m.Subject = &s
	}
	return m
}
