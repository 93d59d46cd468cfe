package oci

import (
	"strings"

	"github.com/packreg/packreg/digest"
)

// Suffixes of cosign's tag schema: what cosign attaches to a manifest by
// tag rather than by subject.
const (
	SuffixSignature   = "sig"
	SuffixAttestation = "att"
	SuffixSBOM        = "sbom"
)

// CosignTag is the tag cosign attaches things of suffix to subject under:
// <alg>-<hex>.<suffix>, as cosign's own normalize writes it. Only a sha256
// subject gets a valid tag: <alg>-<hex>.<suffix> of a sha512 one is longer
// than MaxTagLen, so cosign cannot attach by tag there either.
func CosignTag(subject digest.Digest, suffix string) string {
	return subject.Algorithm() + "-" + subject.Hex() + "." + suffix
}

// ParseCosignTag returns the subject and suffix a cosign tag names, or ok
// false for any other tag. The one rule: tag is a valid tag, ends in .sig,
// .att or .sbom, and what comes before is <alg>-<hex> of a digest packreg
// accepts (lowercase hex of the right length). Only sha256 fits in a tag.
func ParseCosignTag(tag string) (subject digest.Digest, suffix string, ok bool) {
	if !ValidTag(tag) {
		return "", "", false
	}
	i := strings.LastIndexByte(tag, '.')
	if i < 0 {
		return "", "", false
	}
	base, suffix := tag[:i], tag[i+1:]
	switch suffix {
	case SuffixSignature, SuffixAttestation, SuffixSBOM:
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
	return d, suffix, true
}

// fallbackHexLen is the distribution spec's limit on <ref> in the
// referrers tag schema.
const fallbackHexLen = 64

// ReferrersTag is the referrers tag schema's tag for subject: the index of
// its referrers that clients keep on a registry without the referrers API.
// The distribution spec writes it <alg>-<ref>, <ref> cut to 64
// characters, so a sha512 subject has a valid one too (regclient cuts it
// the same way).
func ReferrersTag(subject digest.Digest) string {
	hex := subject.Hex()
	if len(hex) > fallbackHexLen {
		hex = hex[:fallbackHexLen]
	}
	return subject.Algorithm() + "-" + hex
}
