package attest

import (
	"context"
	"fmt"
	"io"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// Source is what attest reads signatures from: *registry.Registry in
// serve (its service methods), a wrapper of it in tests. Errors that mean
// "not there" are oci.ErrManifestUnknown and oci.ErrBlobUnknown.
type Source interface {
	// Manifest returns the manifest ref (tag or digest) of repo.
	Manifest(ctx context.Context, repo, ref string) (*storage.Manifest, error)
	// OpenBlob opens blob d of repo and returns its size.
	OpenBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error)
	// Referrers lists the manifests of repo whose subject is subject, of
	// artifactType when it is not empty.
	Referrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]oci.Descriptor, error)
}

// Publisher stores what the API accepts (a signature or attestation posted
// as JSON) as OCI objects, through the same path as a client push.
// *registry.Registry is one.
type Publisher interface {
	PushBlob(ctx context.Context, repo string, d digest.Digest, body io.Reader) error
	PushManifest(ctx context.Context, repo, ref, mediaType string, payload []byte, tags ...string) (digest.Digest, error)
	// PushManifestIf pushes under tag only if it still points at was
	// ("": absent); otherwise an error matching storage.ErrConflict.
	PushManifestIf(ctx context.Context, repo, tag string, was digest.Digest, mediaType string, payload []byte) (digest.Digest, error)
}

var (
	_ Source    = (*registry.Registry)(nil)
	_ Publisher = (*registry.Registry)(nil)
)

// readBlob reads blob d of repo whole, at most max bytes, and checks that
// the bytes hash to d and have the size the descriptor claims: a blob
// altered at rest is reported, not verified.
func readBlob(ctx context.Context, src Source, repo string, d digest.Digest, size int64, max int64) ([]byte, error) {
	if size > max {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d attest reads", d, size, max)
	}
	rc, _, err := src.OpenBlob(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != size {
		return nil, fmt.Errorf("%w: %s holds %d bytes, its descriptor says %d", errAltered, d, len(b), size)
	}
	if got := digest.FromBytes(d.Algorithm(), b); got != d {
		return nil, fmt.Errorf("%w: stored bytes of %s hash to %s", errAltered, d, got)
	}
	return b, nil
}
