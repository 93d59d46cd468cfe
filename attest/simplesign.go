package attest

import (
	"errors"
	"fmt"

	"github.com/packreg/packreg/digest"
)

// What cosign v2.6.5 writes inside the objects it stores; their media
// types and the signature annotation are in package oci.
const (
	// AnnotationPredicateType is what cosign writes on .att layers. It is
	// advice only: the predicate type reported is the signed statement's.
	AnnotationPredicateType = "predicateType"
	// SimpleSigningType is critical.type of a cosign image signature.
	SimpleSigningType = "cosign container image signature"
	// PredicateCosignSign is the statement a --new-bundle-format signature
	// signs: cosign v2.6.5 signs images with a DSSE envelope, not a
	// messageSignature, and this predicate type says "this is a signature".
	PredicateCosignSign = "https://sigstore.dev/cosign/sign/v1"
)

// Record kinds.
const (
	KindSignature   = "signature"
	KindAttestation = "attestation"
)

// Record formats: how a signature was stored.
const (
	FormatCosignTag   = "cosign-tag"      // sha256-<hex>.sig / .att tags
	FormatCosignOCI11 = "cosign-oci11"    // referrer, artifactType oci.ArtifactTypeCosignSignature
	FormatBundle      = "sigstore-bundle" // referrer, artifactType oci.MediaTypeSigstoreBundle
)

// Payloads, envelopes and bundles are small; an SBOM attestation can be
// large but not without bound.
const maxDocument = 32 << 20

// SimpleSigning is a cosign simple-signing payload: the document a cosign
// image signature signs, byte for byte.
type SimpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// ParseSimpleSigning parses payload and returns it with the manifest digest
// it is about. It checks structure only; the signature is checked over
// the same bytes elsewhere.
func ParseSimpleSigning(payload []byte) (*SimpleSigning, digest.Digest, error) {
	if len(payload) > maxDocument {
		return nil, "", errors.New("simple-signing payload too large")
	}
	var p SimpleSigning
	if err := decodeStrict(payload, &p); err != nil {
		return nil, "", fmt.Errorf("simple-signing payload: %w", err)
	}
	if p.Critical.Type != SimpleSigningType {
		return nil, "", fmt.Errorf("simple-signing payload: critical.type is %q, want %q", clip(p.Critical.Type), SimpleSigningType)
	}
	d, err := digest.Parse(p.Critical.Image.DockerManifestDigest)
	if err != nil {
		return nil, "", fmt.Errorf("simple-signing payload: critical.image.docker-manifest-digest: %w", err)
	}
	return &p, d, nil
}
