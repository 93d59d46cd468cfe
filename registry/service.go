package registry

import (
	"context"
	"errors"
	"io"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// The methods in this file are the registry as a Go service: the one
// implementation of blob pushes, manifest reads and the lookups below.
// The HTTP handlers parse a request, call them (or, for uploads and
// manifest pushes, the cores in upload.go and manifests.go they share),
// and render what they return; packages above the registry (pack
// publish, attest, mirror) call them directly and get the same
// validation, admission and events. Errors are oci's kinds
// (oci.ErrManifestUnknown...) with a message: ask errors.Is.

func checkRepo(repo string) error {
	if !oci.ValidName(repo) {
		return oci.Errorf(oci.ErrNameInvalid, "invalid repository name %q", clip(repo))
	}
	return nil
}

// PushBlob streams body into repo as blob d, verifying the digest before the
// blob becomes visible. A blob repo already has is not read again.
func (r *Registry) PushBlob(ctx context.Context, repo string, d digest.Digest, body io.Reader) error {
	if err := checkRepo(repo); err != nil {
		return err
	}
	if _, err := digest.Parse(string(d)); err != nil {
		return oci.Errorf(oci.ErrDigestInvalid, "%v", err)
	}
	if _, err := r.meta.BlobSize(ctx, repo, d); err == nil {
		return nil // already there
	}
	return r.writeBlob(ctx, repo, d, body, -1)
}

// PushManifest stores payload in repo under ref (a tag or its digest) and
// the extra tags, exactly as a PUT /v2/<repo>/manifests/<ref> would.
func (r *Registry) PushManifest(ctx context.Context, repo, ref, mediaType string, payload []byte, tags ...string) (digest.Digest, error) {
	m, err := r.pushManifest(ctx, repo, ref, tags, mediaType, payload, nil)
	if err != nil {
		return "", err
	}
	return m.Digest, nil
}

// PushManifestIf is PushManifest of payload under tag, done only if tag
// still points at was (does not exist, when was is ""): a read-modify-write
// of a tag (attest appending to cosign's .att manifest) that cannot lose a
// concurrent writer's change, in this process or another replica. When
// the tag has moved it changes nothing and returns an error matching
// storage.ErrConflict: read the tag again and retry.
func (r *Registry) PushManifestIf(ctx context.Context, repo, tag string, was digest.Digest, mediaType string, payload []byte) (digest.Digest, error) {
	m, err := r.pushManifest(ctx, repo, tag, nil, mediaType, payload, &storage.TagState{Tag: tag, Digest: was})
	if err != nil {
		return "", err
	}
	return m.Digest, nil
}

// DeleteTag removes tag from repo, as DELETE /v2/<repo>/manifests/<tag>
// does (its manifest stays until garbage collection finds it untagged),
// recorded as the context's actor. It is the server's own delete: the
// registry.delete_enabled switch closes the /v2/ route, not this door.
func (r *Registry) DeleteTag(ctx context.Context, repo, tag string) error {
	if err := checkRepo(repo); err != nil {
		return err
	}
	if !oci.ValidTag(tag) {
		return oci.Errorf(oci.ErrManifestInvalid, "invalid tag %q", clip(tag))
	}
	return r.deleteTag(ctx, repo, tag)
}

// Manifest returns the manifest ref (tag or digest) of repo, without pull
// gates: callers above the registry apply their own policy.
func (r *Registry) Manifest(ctx context.Context, repo, ref string) (*storage.Manifest, error) {
	if err := checkRepo(repo); err != nil {
		return nil, err
	}
	pr, err := parseReference(ref)
	if err != nil {
		return nil, err
	}
	return r.manifest(ctx, repo, pr)
}

// manifest resolves ref in repo and loads the manifest.
func (r *Registry) manifest(ctx context.Context, repo string, ref reference) (*storage.Manifest, error) {
	var (
		m   *storage.Manifest
		err error
	)
	if ref.tag != "" {
		m, err = r.meta.GetTaggedManifest(ctx, repo, ref.tag)
	} else {
		m, err = r.meta.GetManifest(ctx, repo, ref.digest)
	}
	return m, manifestUnknown(err, repo, ref)
}

// manifestBody is manifest reading only what a pull serves
// (storage GetManifestBody): digest, media type, size and payload.
func (r *Registry) manifestBody(ctx context.Context, repo string, ref reference) (*storage.Manifest, error) {
	m, err := r.meta.GetManifestBody(ctx, repo, ref.tag, ref.digest)
	return m, manifestUnknown(err, repo, ref)
}

// manifestUnknown is MANIFEST_UNKNOWN for a read of ref that found
// nothing; other errors are returned as they are.
func manifestUnknown(err error, repo string, ref reference) error {
	switch {
	case !errors.Is(err, storage.ErrNotFound):
		return err
	case ref.tag != "":
		return oci.Errorf(oci.ErrManifestUnknown, "tag %s not found in repository %s", ref.tag, repo)
	}
	return oci.Errorf(oci.ErrManifestUnknown, "manifest %s not found in repository %s", ref.digest, repo)
}

// ClaimedDigest returns the digest tag of repo is bound to by a claim
// (TagClaimer), or oci.ErrManifestUnknown.
func (r *Registry) ClaimedDigest(ctx context.Context, repo, tag string) (digest.Digest, error) {
	if err := checkRepo(repo); err != nil {
		return "", err
	}
	d, err := r.meta.ClaimedDigest(ctx, repo, tag)
	if errors.Is(err, storage.ErrNotFound) {
		return "", oci.Errorf(oci.ErrManifestUnknown, "tag %s of %s is not claimed", tag, repo)
	}
	return d, err
}

// OpenBlob opens blob d of repo and returns its size. A blob linked into
// repo but missing from the blob store is oci.ErrBlobUnknown too: a
// caller gets nothing to read either way.
func (r *Registry) OpenBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error) {
	size, err := r.StatBlob(ctx, repo, d)
	if err != nil {
		return nil, 0, err
	}
	rc, err := r.blobs.Open(ctx, d, 0)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, 0, oci.Errorf(oci.ErrBlobUnknown, "blob %s of repository %s is missing from the blob store", d, repo)
	}
	return rc, size, err
}

// StatBlob returns the size of blob d in repo.
func (r *Registry) StatBlob(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	if err := checkRepo(repo); err != nil {
		return 0, err
	}
	size, err := r.meta.BlobSize(ctx, repo, d)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, oci.Errorf(oci.ErrBlobUnknown, "blob %s is not in repository %s", d, repo)
	}
	if err != nil {
		return 0, err
	}
	// Never serve bytes a scrub found bad (scrub.go).
	return size, r.refuseBad(ctx, d)
}

// MountBlob links blob d into repo from the repository from (from any
// repository when from is empty), as a cross-repo mount would. It reports
// false when no such blob can be mounted; the caller then pushes it.
func (r *Registry) MountBlob(ctx context.Context, repo, from string, d digest.Digest) (bool, error) {
	if err := checkRepo(repo); err != nil {
		return false, err
	}
	return r.linkFrom(ctx, repo, d, from)
}

// Referrers lists the manifests of repo whose subject is subject, as the
// referrers API answers (tag schema index included), filtered by
// artifactType when it is not empty, in digest order.
func (r *Registry) Referrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]oci.Descriptor, error) {
	if err := checkRepo(repo); err != nil {
		return nil, err
	}
	return r.referrerList(ctx, repo, subject, artifactType)
}

// Tags returns up to n tags of repo in byte order, all > last.
func (r *Registry) Tags(ctx context.Context, repo, last string, n int) ([]string, error) {
	if err := checkRepo(repo); err != nil {
		return nil, err
	}
	return r.meta.ListTags(ctx, repo, last, n)
}

// Repositories returns up to n repository names in byte order, all > last.
func (r *Registry) Repositories(ctx context.Context, last string, n int) ([]string, error) {
	return r.meta.ListRepositories(ctx, last, n)
}
