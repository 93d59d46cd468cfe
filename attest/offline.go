package attest

import (
	"context"
	"fmt"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// VerifyBundleSignature checks the signature of an offline bundle's
// manifest (package bundle writes it as cosign writes an image signature:
// a simple-signing payload about the manifest's digest, and a signature
// over the payload's bytes). It returns the key that vouches for it: a
// key of the ring trusted for bundles (storage.KeyUsageBundles), valid
// now. A key trusted for signatures only never vouches for a bundle, and
// a bundle key for no signature of a version: the two trusts are granted
// apart. A payload about another digest, or a signature no such key
// verifies, is ErrUnverified; a malformed payload ErrInvalid.
func (s *Service) VerifyBundleSignature(ctx context.Context, subject digest.Digest, payload, sig []byte) (*storage.Key, error) {
	_, about, err := ParseSimpleSigning(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if about != subject {
		return nil, fmt.Errorf("%w: the signed payload is about %s, not the bundle's manifest %s", ErrUnverified, about, subject)
	}
	return s.vouchFor(ctx, storage.KeyUsageBundles, sig, payload, "")
}
