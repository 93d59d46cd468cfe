package attest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/packreg/packreg/digest"
)

// SigManifest is what a signature or attestation manifest holds, in any of
// the three layouts cosign v2.6.5 writes:
//
//   - tag schema: an image manifest tagged sha256-<hex>.sig (layers
//     MediaTypeSimpleSigning, each with AnnotationSignature) or
//     sha256-<hex>.att (layers MediaTypeDSSE); no subject, the tag names it;
//   - OCI 1.1 referrer: artifactType ArtifactTypeCosignSig, the same
//     simple-signing layers, subject set;
//   - sigstore bundle: artifactType MediaTypeBundle, one layer of that type
//     holding the bundle JSON, subject set.
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
	// Signature is the decoded AnnotationSignature of a simple-signing
	// layer; SignatureErr says why it is unusable when it is.
	Signature    []byte
	SignatureErr string
}

// maxItems bounds the checks one manifest can ask for (cosign appends one
// layer per signature to a .sig manifest, so a few is normal).
const maxItems = 64

type sigManifestDoc struct {
	MediaType    string `json:"mediaType"`
	ArtifactType string `json:"artifactType"`
	Config       struct {
		MediaType string `json:"mediaType"`
	} `json:"config"`
	Layers []struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations"`
	} `json:"layers"`
	Subject *struct {
		Digest string `json:"digest"`
	} `json:"subject"`
}

// ParseSignatureManifest reads an image manifest and returns its signature
// layers, or nil when it holds none (an SBOM referrer, a plain image).
// payload is decoded the way the registry and cosign decode manifests
// (encoding/json), so all three see the same layers.
func ParseSignatureManifest(payload []byte) (*SigManifest, error) {
	var doc sigManifestDoc
	if err := json.Unmarshal(payload, &doc); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	sm := &SigManifest{Layers: len(doc.Layers)}
	if doc.Subject != nil {
		d, err := digest.Parse(doc.Subject.Digest)
		if err != nil {
			return nil, fmt.Errorf("manifest subject: %w", err)
		}
		sm.Subject = d
	}
	isBundle := doc.ArtifactType == MediaTypeBundle
	for i, l := range doc.Layers {
		switch {
		case l.MediaType == MediaTypeBundle, isBundle && bundleMediaTypes[l.MediaType]:
			sm.Format = FormatBundle
		case l.MediaType == MediaTypeSimpleSigning, l.MediaType == MediaTypeDSSE:
			if sm.Format == "" {
				sm.Format = FormatCosignTag
				if doc.ArtifactType == ArtifactTypeCosignSig || doc.Config.MediaType == ArtifactTypeCosignSig {
					sm.Format = FormatCosignOCI11
				}
			}
		default:
			continue // other layers (an SBOM next to a signature) are not ours to judge
		}
		if len(sm.Items) == maxItems {
			return nil, fmt.Errorf("more than %d signature layers", maxItems)
		}
		d, err := digest.Parse(l.Digest)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		if l.Size < 0 {
			return nil, fmt.Errorf("layer %d: negative size", i)
		}
		it := SigItem{Index: i, MediaType: l.MediaType, Digest: d, Size: l.Size}
		if l.MediaType == MediaTypeSimpleSigning {
			it.Signature, it.SignatureErr = signatureAnnotation(l.Annotations)
		}
		sm.Items = append(sm.Items, it)
	}
	if len(sm.Items) == 0 {
		return nil, nil
	}
	return sm, nil
}

func signatureAnnotation(a map[string]string) ([]byte, string) {
	s, ok := a[AnnotationSignature]
	if !ok || s == "" {
		return nil, "layer has no " + AnnotationSignature + " annotation"
	}
	b, err := decodeBase64(s)
	if err != nil {
		return nil, "signature annotation is not base64: " + err.Error()
	}
	return b, ""
}

// TagSubject returns the subject named by a tag-schema tag
// ("sha256-<hex>.sig" → sha256:<hex>, kind signature; ".att" → attestation),
// or ok false for any other tag.
func TagSubject(tag string) (subject digest.Digest, kind string, ok bool) {
	var base string
	switch {
	case strings.HasSuffix(tag, ".sig"):
		base, kind = strings.TrimSuffix(tag, ".sig"), KindSignature
	case strings.HasSuffix(tag, ".att"):
		base, kind = strings.TrimSuffix(tag, ".att"), KindAttestation
	default:
		return "", "", false
	}
	alg, hex, found := strings.Cut(base, "-")
	if !found {
		return "", "", false
	}
	d, err := digest.Parse(alg + ":" + hex)
	if err != nil {
		return "", "", false
	}
	return d, kind, true
}

// SchemaTag is the tag-schema tag of subject for kind: the inverse of TagSubject.
func SchemaTag(subject digest.Digest, kind string) string {
	suffix := ".sig"
	if kind == KindAttestation {
		suffix = ".att"
	}
	return subject.Algorithm() + "-" + subject.Hex() + suffix
}

var errAltered = errors.New("stored content was altered")
