package bundle

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// Signer signs bundles with the exporting registry's bundle key
// (bundles.signing_key). A bundle's signature is what cosign writes for
// an image signed in OCI 1.1 mode: a referrer of the bundle's manifest
// whose one layer is a simple-signing payload naming the manifest's
// digest, the signature over the payload in its annotation. The importing
// registry checks it as it checks cosign's, against keys trusted for
// bundles (attest).
type Signer struct {
	KeyID     string // hex SHA-256 of the public key's DER, as the key ring names it
	Algorithm string
	PublicPEM string
	s         signature.Signer
}

// ErrKey is wrapped by every reason a bundle key is refused.
var ErrKey = errors.New("unusable bundle signing key")

// LoadSigner reads a PEM private key: PKCS#8, PKCS#1 (RSA) or SEC 1 (EC),
// or an encrypted cosign key (cosign generate-key-pair) with its
// password. ECDSA P-256 signs with SHA-256, P-384 with SHA-384, RSA (2048
// bits or more) with PKCS#1 v1.5 and SHA-256, Ed25519 as is.
func LoadSigner(pemBytes, password []byte) (*Signer, error) {
	if block, _ := pem.Decode(pemBytes); block == nil || !bytes.Contains([]byte(block.Type), []byte("PRIVATE KEY")) {
		return nil, fmt.Errorf("%w: not a PEM private key", ErrKey)
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(pemBytes, func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	var (
		pub  crypto.PublicKey
		hash = crypto.SHA256
		alg  string
	)
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			alg = "ecdsa-p256"
		case elliptic.P384():
			alg, hash = "ecdsa-p384", crypto.SHA384
		default:
			return nil, fmt.Errorf("%w: ECDSA on %s: want P-256 or P-384", ErrKey, k.Curve.Params().Name)
		}
		pub = &k.PublicKey
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("%w: RSA of %d bits: want 2048 or more", ErrKey, k.N.BitLen())
		}
		alg, pub = fmt.Sprintf("rsa-%d", k.N.BitLen()), &k.PublicKey
	case ed25519.PrivateKey:
		alg, pub, hash = "ed25519", k.Public(), crypto.Hash(0)
	default:
		return nil, fmt.Errorf("%w: a %T key: want ECDSA, RSA or Ed25519", ErrKey, priv)
	}
	s, err := signature.LoadSigner(priv, hash)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	sum := sha256.Sum256(der)
	return &Signer{KeyID: hex.EncodeToString(sum[:]), Algorithm: alg, s: s,
		PublicPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}, nil
}

// sign returns the signature manifest of the bundle manifest desc, and
// the payload it signs.
func (s *Signer) sign(desc oci.Descriptor, doc *Document) (manifest, payload []byte, err error) {
	p := map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": "packreg-bundle/" + doc.Chain},
			"image":    map[string]string{"docker-manifest-digest": string(desc.Digest)},
			"type":     "cosign container image signature",
		},
		"optional": map[string]any{"source": doc.Source, "chain": doc.Chain, "sequence": doc.Sequence},
	}
	if payload, err = json.Marshal(p); err != nil {
		return nil, nil, err
	}
	sig, err := s.s.SignMessage(bytes.NewReader(payload))
	if err != nil {
		return nil, nil, err
	}
	layer := oci.NewDescriptor(oci.MediaTypeCosignSimpleSigning, digest.FromBytes(digest.SHA256, payload), int64(len(payload)))
	layer.Annotations = map[string]string{oci.AnnotationCosignSignature: base64.StdEncoding.EncodeToString(sig)}
	m := oci.NewManifest(emptyConfig(), []oci.Descriptor{layer})
	m.ArtifactType = oci.ArtifactTypeCosignSignature
	subject := desc
	subject.Annotations = nil
	m.Subject = &subject
	manifest, err = json.Marshal(m)
	return manifest, payload, err
}

// Verifier checks a bundle's signature against the key ring: the key that
// vouches for it (trusted for bundles, valid now), or an error. attest's
// VerifyBundleSignature is one.
type Verifier interface {
	VerifyBundleSignature(ctx context.Context, subject digest.Digest, payload, sig []byte) (*storage.Key, error)
}

// verifyHeader returns the key that vouches for one of h's signatures, or
// why none does.
func verifyHeader(ctx context.Context, v Verifier, h *Header) (*storage.Key, error) {
	if len(h.Signatures) == 0 {
		return nil, errors.New("the bundle is not signed")
	}
	if v == nil {
		return nil, errors.New("this registry checks no bundle signatures")
	}
	var errs []error
	for _, s := range h.Signatures {
		k, err := v.VerifyBundleSignature(ctx, h.Digest, s.Payload, s.Signature)
		if err == nil {
			return k, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}
