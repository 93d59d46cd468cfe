package mirror

import (
	"context"
	"errors"
	"io"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
)

// Errors. Implementations wrap them with %w; callers test with errors.Is.
var (
	// ErrNotFound: no such manifest, tag, blob or repository on that side.
	ErrNotFound = errors.New("mirror: not found")
	// ErrDenied: the registry refused (401/403) with the credentials given.
	ErrDenied = errors.New("mirror: access denied")
	// ErrInvalid: a remote answered something that cannot be right (bytes
	// that do not hash to their digest, an oversized or malformed answer).
	// Retrying does not help.
	ErrInvalid = errors.New("mirror: invalid answer")
	// ErrLimit: the work would cross one of the caps on totals (listing
	// pages, referrers, nesting, run time). Retrying does not help; the
	// error names the limit.
	ErrLimit = errors.New("mirror: limit exceeded")
)

// Source is a registry content is read from.
type Source interface {
	// Resolve describes the manifest ref (a tag or a digest) of repo.
	Resolve(ctx context.Context, repo, ref string) (oci.Descriptor, error)
	// Manifest returns the bytes of manifest d, checked against d.
	Manifest(ctx context.Context, repo string, d digest.Digest) ([]byte, oci.Descriptor, error)
	// Blob opens blob d. The engine checks size and digest while reading.
	Blob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, error)
	// Referrers lists the manifests whose subject is d: the referrers API,
	// or the tag-schema index (tag <alg>-<hex>) where there is none.
	Referrers(ctx context.Context, repo string, d digest.Digest) ([]oci.Descriptor, error)
	// Tags lists every tag of repo (none, not an error, for an unknown repo).
	Tags(ctx context.Context, repo string) ([]string, error)
}

// Sink is a registry content is written to. It is a Source too: the engine
// reads it back to learn what it already has.
type Sink interface {
	Source
	// HasBlob reports whether repo holds blob d.
	HasBlob(ctx context.Context, repo string, d digest.Digest) (bool, error)
	// PutBlob streams desc.Size bytes of r into repo as blob desc.Digest.
	PutBlob(ctx context.Context, repo string, desc oci.Descriptor, r io.Reader) error
	// PutManifest stores payload, byte for byte, under ref (a tag or
	// desc.Digest).
	PutManifest(ctx context.Context, repo, ref string, desc oci.Descriptor, payload []byte) error
}

// Mounter is an optional Sink ability: link a blob the sink holds in
// repository from into repo, without sending it. ok is false when the sink
// declined; the engine then sends the blob.
type Mounter interface {
	MountBlob(ctx context.Context, repo, from string, d digest.Digest) (ok bool, err error)
}

// ReferrersIndexer is an optional Sink ability: it reports whether the
// sink indexes referrers by their subject itself (the referrers API). A
// sink without the ability, or answering false, gets the tag-schema index
// written by the engine, which is what clients read there.
type ReferrersIndexer interface {
	IndexesReferrers(ctx context.Context) (bool, error)
}

// Cataloger is an optional ability of either side: every repository name.
type Cataloger interface {
	Repositories(ctx context.Context) ([]string, error)
}

// Version is one pack version as a listing sees it. Digest may be empty
// when the listing does not say (a plain registry's tag list); Status is
// "" when the side keeps no lifecycle.
type Version struct {
	Name    string        `json:"name"`
	Version string        `json:"version"`
	Digest  digest.Digest `json:"digest,omitempty"`
	Status  string        `json:"status,omitempty"`
	Reason  string        `json:"reason,omitempty"` // why it is in Status
}
