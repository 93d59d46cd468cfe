package registry

import (
	"strings"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
)

// parseDigest validates a digest from a URL or query, as an OCI error.
func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", oci.Errorf(oci.ErrDigestInvalid, "%v", err)
	}
	return d, nil
}

// reference is a manifest reference: a tag or a digest, never both.
type reference struct {
	tag    string
	digest digest.Digest
}

// parseReference classifies ref. Anything with a colon must be a valid digest.
func parseReference(ref string) (reference, error) {
	if strings.Contains(ref, ":") {
		d, err := parseDigest(ref)
		return reference{digest: d}, err
	}
	if !oci.ValidTag(ref) {
		return reference{}, oci.Errorf(oci.ErrDigestInvalid,
			"reference %q is neither a valid tag nor a valid digest", clip(ref))
	}
	return reference{tag: ref}, nil
}

// clip keeps hostile input out of messages at a readable length.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
