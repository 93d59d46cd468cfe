package attest

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/packreg/packreg/oci"
)

// Bundle is the part of a sigstore bundle (protobuf-specs Bundle, JSON
// form) that key-based verification needs. Transparency-log entries and
// timestamps are carried but not checked: packreg trusts keys, not logs.
type Bundle struct {
	MediaType            string `json:"mediaType"`
	VerificationMaterial struct {
		PublicKey *struct {
			Hint string `json:"hint"`
		} `json:"publicKey"`
		Certificate          *struct{} `json:"certificate"`
		X509CertificateChain *struct{} `json:"x509CertificateChain"`
	} `json:"verificationMaterial"`
	MessageSignature *struct {
		MessageDigest struct {
			Algorithm string `json:"algorithm"`
			Digest    string `json:"digest"`
		} `json:"messageDigest"`
		Signature string `json:"signature"`
	} `json:"messageSignature"`
	DSSEEnvelope *Envelope `json:"dsseEnvelope"`

	messageDigest []byte // MessageSignature.MessageDigest.Digest decoded
	signature     []byte // MessageSignature.Signature decoded
}

// ParseBundle parses a sigstore bundle: exactly one of messageSignature
// and dsseEnvelope, each with its bytes decoded. It checks no signature.
func ParseBundle(b []byte) (*Bundle, error) {
	if len(b) > maxDocument {
		return nil, errors.New("sigstore bundle too large")
	}
	var bu Bundle
	if err := decodeStrict(b, &bu); err != nil {
		return nil, fmt.Errorf("sigstore bundle: %w", err)
	}
	if !oci.IsSigstoreBundle(bu.MediaType) {
		return nil, fmt.Errorf("sigstore bundle: unknown mediaType %q", clip(bu.MediaType))
	}
	switch {
	case (bu.MessageSignature == nil) == (bu.DSSEEnvelope == nil):
		return nil, errors.New("sigstore bundle: want exactly one of messageSignature and dsseEnvelope")
	case bu.DSSEEnvelope != nil:
		if err := bu.DSSEEnvelope.decode(); err != nil {
			return nil, fmt.Errorf("sigstore bundle: dsseEnvelope: %w", err)
		}
	default:
		ms := bu.MessageSignature
		if ms.MessageDigest.Algorithm != "SHA2_256" {
			return nil, fmt.Errorf("sigstore bundle: messageDigest algorithm %q, want SHA2_256", clip(ms.MessageDigest.Algorithm))
		}
		var err error
		if bu.messageDigest, err = decodeBase64(ms.MessageDigest.Digest); err != nil || len(bu.messageDigest) != 32 {
			return nil, errors.New("sigstore bundle: messageDigest is not a base64 SHA-256")
		}
		if bu.signature, err = decodeBase64(ms.Signature); err != nil {
			return nil, fmt.Errorf("sigstore bundle: signature: %w", err)
		}
	}
	return &bu, nil
}

// KeyHint returns the key id the bundle names (its publicKey hint, when
// that is the base64 SHA-256 of a SubjectPublicKeyInfo as cosign writes
// it), or "".
func (b *Bundle) KeyHint() string {
	pk := b.VerificationMaterial.PublicKey
	if pk == nil {
		return ""
	}
	raw, err := decodeBase64(pk.Hint)
	if err != nil || len(raw) != 32 {
		return ""
	}
	return hex.EncodeToString(raw)
}

// Keyless reports whether the bundle is verified by a certificate
// (Fulcio) rather than a key: packreg cannot verify those.
func (b *Bundle) Keyless() bool {
	vm := b.VerificationMaterial
	return vm.PublicKey == nil && (vm.Certificate != nil || vm.X509CertificateChain != nil)
}
