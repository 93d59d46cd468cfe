package oci

import (
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest media types packreg stores. Artifact types are free; these are
// not: a registry refuses any other manifest media type.
const (
	MediaTypeImageManifest      = ocispec.MediaTypeImageManifest
	MediaTypeImageIndex         = ocispec.MediaTypeImageIndex
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// Blob media types packreg writes itself.
const (
	MediaTypeEmptyJSON = ocispec.MediaTypeEmptyJSON
)

// Media types, artifact types and annotations of the ways cosign v2.6.5
// attaches signatures and attestations.
const (
	// MediaTypeCosignSimpleSigning is a layer holding a simple-signing
	// payload, signed in AnnotationCosignSignature.
	MediaTypeCosignSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	// ArtifactTypeCosignSignature is the artifactType of a signature pushed
	// with --registry-referrers-mode=oci-1-1.
	ArtifactTypeCosignSignature = "application/vnd.dev.cosign.artifact.sig.v1+json"
	// AnnotationCosignSignature holds the base64 signature over the layer bytes.
	AnnotationCosignSignature = "dev.cosignproject.cosign/signature"
	// A keyless (certificate) signature carries, on the same layer, the
	// PEM Fulcio certificate and its chain, the Rekor entry as cosign's
	// "bundle" (the entry body, its integrated time, log index and id,
	// and the log's signed entry timestamp) and an RFC 3161 timestamp
	// ({"SignedRFC3161Timestamp": base64 DER}).
	AnnotationCosignCertificate = "dev.sigstore.cosign/certificate"
	AnnotationCosignChain       = "dev.sigstore.cosign/chain"
	AnnotationCosignBundle      = "dev.sigstore.cosign/bundle"
	AnnotationCosignTimestamp   = "dev.sigstore.cosign/rfc3161timestamp"
	// MediaTypeDSSE is a layer holding a DSSE envelope (cosign attest).
	MediaTypeDSSE = "application/vnd.dsse.envelope.v1+json"
	// PayloadTypeInToto is the DSSE payloadType of an in-toto statement.
	PayloadTypeInToto = "application/vnd.in-toto+json"
	// MediaTypeSigstoreBundle is a sigstore bundle (--new-bundle-format):
	// the artifactType of its manifest and the media type of its layer.
	MediaTypeSigstoreBundle = "application/vnd.dev.sigstore.bundle.v0.3+json"
)

// The packreg pack artifact (DESIGN.md, Vocabulary).
const (
	// ArtifactTypePack marks a pack manifest (its artifactType).
	ArtifactTypePack = "application/vnd.packreg.pack.v1"
	// MediaTypePackConfig is the pack config blob. A manifest with this
	// config and no artifactType (pre-1.1 clients) is a pack too.
	MediaTypePackConfig = "application/vnd.packreg.pack.config.v1+json"
	// MediaTypePackFile is the layer type of a published file whose upload
	// did not say what it is.
	MediaTypePackFile = "application/vnd.packreg.pack.file.v1"
	// AnnotationPackLabels carries the labels (a JSON object) of a pack
	// pushed with the empty config instead of a pack config blob.
	AnnotationPackLabels = "vnd.packreg.pack.labels"
)

// Annotations of image-spec that packs read and write.
const (
	// AnnotationTitle names a layer's file; `oras pull` writes it there.
	AnnotationTitle       = ocispec.AnnotationTitle
	AnnotationCreated     = ocispec.AnnotationCreated
	AnnotationDescription = ocispec.AnnotationDescription
)

// IsIndex reports whether mt is an index: OCI's, or Docker's manifest list.
func IsIndex(mt string) bool { return mt == MediaTypeImageIndex || mt == MediaTypeDockerManifestList }

// IsImageManifest reports whether mt is an image manifest, OCI's or Docker's.
func IsImageManifest(mt string) bool {
	return mt == MediaTypeImageManifest || mt == MediaTypeDockerManifest
}

// IsManifest reports whether mt is one of the manifest media types
// packreg stores (an image manifest or an index).
func IsManifest(mt string) bool { return IsImageManifest(mt) || IsIndex(mt) }

// ManifestMediaTypes lists the manifest media types packreg stores, for an
// Accept header.
func ManifestMediaTypes() []string {
	return []string{MediaTypeImageManifest, MediaTypeImageIndex, MediaTypeDockerManifest, MediaTypeDockerManifestList}
}

// NonDistributable reports whether a layer of media type mt is foreign:
// it lives at its URLs, and no registry is asked for it.
func NonDistributable(mt string) bool {
	return strings.Contains(mt, "nondistributable") || strings.Contains(mt, "foreign")
}

// IsSigstoreBundle reports whether mt is a sigstore bundle whose layout
// packreg knows: v0.3, and the older "+json;version=" forms.
func IsSigstoreBundle(mt string) bool {
	switch mt {
	case MediaTypeSigstoreBundle,
		"application/vnd.dev.sigstore.bundle+json;version=0.2",
		"application/vnd.dev.sigstore.bundle+json;version=0.1":
		return true
	}
	return false
}

// IsPack reports whether a manifest's artifact type, as the registry
// reports it (artifactType, else the config media type), makes it a pack.
func IsPack(artifactType string) bool {
	return artifactType == ArtifactTypePack || artifactType == MediaTypePackConfig
}
