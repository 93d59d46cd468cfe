package registry

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// The methods in this file are the registry as a Go service, for packages
// above it (pack publish, mirror import). They run the same validation,
// admission and events as the HTTP API; errors are *Error values with the
// OCI code and status a client would have seen.

func checkRepo(repo string) error {
	if !oci.ValidName(repo) {
		return ociErr(http.StatusBadRequest, codeNameInvalid, "invalid repository name %q", clip(repo))
	}
	return nil
}

// PushBlob streams body into repo as blob d, verifying the digest before the
// blob becomes visible.
func (r *Registry) PushBlob(ctx context.Context, repo string, d digest.Digest, body io.Reader) error {
	if err := checkRepo(repo); err != nil {
		return err
	}
	if _, err := digest.Parse(string(d)); err != nil {
		return ociErr(http.StatusBadRequest, codeDigestInvalid, "%v", err)
	}
	if _, err := r.meta.BlobSize(ctx, repo, d); err == nil {
		return nil // already there
	}
	u := r.newUpload(repo, d.Algorithm())
	br := &bodyReader{r: body, left: -1}
	if r.maxBlobSize > 0 {
		br.left = r.maxBlobSize
	}
	if err := r.blobs.Append(ctx, u, br); err != nil {
		r.blobs.Abort(ctx, u)
		if br.tooLarge {
			return tooLarge(r.maxBlobSize)
		}
		return err
	}
	if err := r.blobs.Commit(ctx, u, d); err != nil {
		if errors.Is(err, storage.ErrDigestMismatch) {
			return ociErr(http.StatusBadRequest, codeDigestInvalid, "content does not match digest %s", d)
		}
		return err
	}
	ev := event(ctx, Event{Action: ActionBlobPush, Repo: repo, Digest: d, Size: u.Offset})
	if err := r.meta.LinkBlob(ctx, repo, d, u.Offset, ev.Record()); err != nil {
		return err
	}
	r.notify(ctx, ev)
	return nil
}

// PushManifest stores payload in repo under ref (a tag or its digest) and
// the extra tags, exactly as a PUT /v2/<repo>/manifests/<ref> would.
func (r *Registry) PushManifest(ctx context.Context, repo, ref, mediaType string, payload []byte, tags ...string) (digest.Digest, error) {
	if err := checkRepo(repo); err != nil {
		return "", err
	}
	pr, err := parseReference(ref)
	if err != nil {
		return "", err
	}
	m, err := r.storeManifest(ctx, repo, pr, tags, mediaType, payload)
	if err != nil {
		return "", err
	}
	return m.Digest, nil
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
	var d digest.Digest
	if pr.digest != "" {
		d = pr.digest
	} else {
		d, err = r.meta.ResolveTag(ctx, repo, pr.tag)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, ociErr(http.StatusNotFound, codeManifestUnknown, "tag %s not found in repository %s", pr.tag, repo)
		}
		if err != nil {
			return nil, err
		}
	}
	m, err := r.meta.GetManifest(ctx, repo, d)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ociErr(http.StatusNotFound, codeManifestUnknown, "manifest %s not found in repository %s", d, repo)
	}
	return m, err
}

// ClaimedDigest returns the digest tag of repo is bound to by a claim
// (TagClaimer), or a not-found error.
func (r *Registry) ClaimedDigest(ctx context.Context, repo, tag string) (digest.Digest, error) {
	if err := checkRepo(repo); err != nil {
		return "", err
	}
	d, err := r.meta.ClaimedDigest(ctx, repo, tag)
	if errors.Is(err, storage.ErrNotFound) {
		return "", ociErr(http.StatusNotFound, codeManifestUnknown, "tag %s of %s is not claimed", tag, repo)
	}
	return d, err
}

// OpenBlob opens blob d of repo and returns its size.
func (r *Registry) OpenBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error) {
	if err := checkRepo(repo); err != nil {
		return nil, 0, err
	}
	size, err := r.meta.BlobSize(ctx, repo, d)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, 0, ociErr(http.StatusNotFound, codeBlobUnknown, "blob %s is not in repository %s", d, repo)
	}
	if err != nil {
		return nil, 0, err
	}
	rc, err := r.blobs.Open(ctx, d, 0)
	return rc, size, err
}

// IsNotFound reports whether err says a blob, manifest, tag or repository is unknown.
func IsNotFound(err error) bool {
	var oe *Error
	if errors.As(err, &oe) {
		return oe.Status == http.StatusNotFound
	}
	return errors.Is(err, storage.ErrNotFound)
}

// StatBlob returns the size of blob d in repo.
func (r *Registry) StatBlob(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	if err := checkRepo(repo); err != nil {
		return 0, err
	}
	size, err := r.meta.BlobSize(ctx, repo, d)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, ociErr(http.StatusNotFound, codeBlobUnknown, "blob %s is not in repository %s", d, repo)
	}
	return size, err
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
