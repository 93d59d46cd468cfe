package attest

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
)

// SigManifest is what a signature or attestation manifest holds, in any of
// the three layouts cosign v2.6.5 writes:
//
//   - tag schema: an image manifest tagged sha256-<hex>.sig (layers
//     oci.MediaTypeCosignSimpleSigning, each with
//     oci.AnnotationCosignSignature) or sha256-<hex>.att (layers
//     oci.MediaTypeDSSE); no subject, the tag names it (oci.ParseCosignTag);
//   - OCI 1.1 referrer: artifactType oci.ArtifactTypeCosignSignature, the
//     same simple-signing layers, subject set;
//   - sigstore bundle: artifactType oci.MediaTypeSigstoreBundle, one layer
//     of that type holding the bundle JSON, subject set.
type SigManifest struct {
	Format  string
	Subject digest.Digest // the manifest's subject; "" in the tag schema
	Items   []SigItem
	// Layers counts every layer: when it equals len(Items) the manifest
	// is nothing but signatures.
	Layers int
}

// SigItem is one layer to verify.
type SigItem struct {
	Index     int // layer position
	MediaType string
	Digest    digest.Digest
	Size      int64
	// Signature is the decoded oci.AnnotationCosignSignature of a simple-signing
	// layer; SignatureErr says why it is unusable when it is.
	Signature    []byte
	SignatureErr string
	// Cert is the layer's keyless material (oci.AnnotationCosignCertificate
	// and the Rekor entry and timestamp next to it), nil for a key
	// signature.
	Cert *CertMaterial
}

// CertMaterial is what cosign writes next to a keyless signature in the
// tag schema and OCI 1.1 layouts, as the annotations hold it.
type CertMaterial struct {
	Certificate string // PEM
	Chain       string // PEM, may be empty
	RekorBundle string // JSON, may be empty
	Timestamp   string // JSON, may be empty
}

// maxItems bounds the checks one manifest can ask for (cosign appends one
// layer per signature to a .sig manifest, so a few is normal).
const maxItems = 64

// ParseSignatureManifest reads an image manifest and returns its signature
// layers, or nil when it holds none (an SBOM referrer, a plain image).
// payload is decoded the way the registry and cosign decode manifests
// (encoding/json), so all three see the same layers.
func ParseSignatureManifest(payload []byte) (*SigManifest, error) {
	var doc oci.Manifest
	if err := json.Unmarshal(payload, &doc); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	sm := &SigManifest{Layers: len(doc.Layers)}
	if doc.Subject != nil {
		d, err := digest.Parse(string(doc.Subject.Digest))
		if err != nil {
			return nil, fmt.Errorf("manifest subject: %w", err)
		}
		sm.Subject = d
	}
	isBundle := doc.ArtifactType == oci.MediaTypeSigstoreBundle
	for i, l := range doc.Layers {
		switch {
		case l.MediaType == oci.MediaTypeSigstoreBundle, isBundle && oci.IsSigstoreBundle(l.MediaType):
			sm.Format = FormatBundle
		case l.MediaType == oci.MediaTypeCosignSimpleSigning, l.MediaType == oci.MediaTypeDSSE:
			if sm.Format == "" {
				sm.Format = FormatCosignTag
				if doc.ArtifactType == oci.ArtifactTypeCosignSignature || doc.Config.MediaType == oci.ArtifactTypeCosignSignature {
					sm.Format = FormatCosignOCI11
				}
			}
		default:
			continue // other layers (an SBOM next to a signature) are not ours to judge
		}
		if len(sm.Items) == maxItems {
			return nil, fmt.Errorf("more than %d signature layers", maxItems)
		}
		d, err := digest.Parse(string(l.Digest))
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		if l.Size < 0 {
			return nil, fmt.Errorf("layer %d: negative size", i)
		}
		it := SigItem{Index: i, MediaType: l.MediaType, Digest: d, Size: l.Size}
		if l.MediaType == oci.MediaTypeCosignSimpleSigning {
			it.Signature, it.SignatureErr = signatureAnnotation(l.Annotations)
		}
		if c := l.Annotations[oci.AnnotationCosignCertificate]; c != "" {
			it.Cert = &CertMaterial{Certificate: c, Chain: l.Annotations[oci.AnnotationCosignChain],
				RekorBundle: l.Annotations[oci.AnnotationCosignBundle], Timestamp: l.Annotations[oci.AnnotationCosignTimestamp]}
		}
		sm.Items = append(sm.Items, it)
	}
	if len(sm.Items) == 0 {
		return nil, nil
	}
	return sm, nil
}

func signatureAnnotation(a map[string]string) ([]byte, string) {
	s, ok := a[oci.AnnotationCosignSignature]
	if !ok || s == "" {
		return nil, "layer has no " + oci.AnnotationCosignSignature + " annotation"
	}
	b, err := decodeBase64(s)
	if err != nil {
		return nil, "signature annotation is not base64: " + err.Error()
	}
	return b, ""
}

// TagSubject returns the subject and record kind a cosign tag names
// ("sha256-<hex>.sig" → sha256:<hex>, kind signature; ".att" →
// attestation), or ok false for any other tag, an SBOM's ".sbom"
// included: it holds no signature. oci.ParseCosignTag decides what a
// cosign tag is.
func TagSubject(tag string) (subject digest.Digest, kind string, ok bool) {
	subject, suffix, ok := oci.ParseCosignTag(tag)
	switch {
	case !ok:
		return "", "", false
	case suffix == oci.SuffixSignature:
		return subject, KindSignature, true
	case suffix == oci.SuffixAttestation:
		return subject, KindAttestation, true
	}
	return "", "", false
}

// SchemaTag is the cosign tag of subject for kind: the inverse of TagSubject.
func SchemaTag(subject digest.Digest, kind string) string {
	if kind == KindAttestation {
		return oci.CosignTag(subject, oci.SuffixAttestation)
	}
	return oci.CosignTag(subject, oci.SuffixSignature)
}

var errAltered = errors.New("stored content was altered")
