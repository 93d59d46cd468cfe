package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// LocalRegistry is the part of *registry.Registry the engine uses: the
// same validation, admission and events as a client's push, and reads
// without pull gates (an archived pack must still be mirrored when asked).
type LocalRegistry interface {
	PushBlob(ctx context.Context, repo string, d digest.Digest, body io.Reader) error
	PushManifest(ctx context.Context, repo, ref, mediaType string, payload []byte, tags ...string) (digest.Digest, error)
	Manifest(ctx context.Context, repo, ref string) (*storage.Manifest, error)
	OpenBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error)
	StatBlob(ctx context.Context, repo string, d digest.Digest) (int64, error)
	MountBlob(ctx context.Context, repo, from string, d digest.Digest) (bool, error)
	Referrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]oci.Descriptor, error)
	Tags(ctx context.Context, repo, last string, n int) ([]string, error)
	Repositories(ctx context.Context, last string, n int) ([]string, error)
}

var _ LocalRegistry = (*registry.Registry)(nil)

// Local is this packreg as a Source and a Sink. Writes carry Actor, so
// the audit trail says the mirror did them.
type Local struct {
	reg   LocalRegistry
	actor string
}

var (
	_ Sink             = (*Local)(nil)
	_ Mounter          = (*Local)(nil)
	_ ReferrersIndexer = (*Local)(nil)
	_ Cataloger        = (*Local)(nil)
)

// NewLocal wraps reg; actor names the writer in events and the audit trail.
func NewLocal(reg LocalRegistry, actor string) *Local { return &Local{reg: reg, actor: actor} }

// localErr puts registry answers in the package's terms.
func localErr(err error) error {
	if errors.Is(err, oci.ErrManifestUnknown) || errors.Is(err, oci.ErrBlobUnknown) || errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

func (l *Local) Resolve(ctx context.Context, repo, ref string) (oci.Descriptor, error) {
	m, err := l.reg.Manifest(ctx, repo, ref)
	if err != nil {
		return oci.Descriptor{}, localErr(err)
	}
	return manifestDescriptor(m), nil
}

func manifestDescriptor(m *storage.Manifest) oci.Descriptor {
	d := oci.NewDescriptor(m.MediaType, m.Digest, m.Size)
	d.ArtifactType, d.Annotations = m.ArtifactType, m.Annotations
	return d
}

func (l *Local) Manifest(ctx context.Context, repo string, d digest.Digest) ([]byte, oci.Descriptor, error) {
	m, err := l.reg.Manifest(ctx, repo, d.String())
	if err != nil {
		return nil, oci.Descriptor{}, localErr(err)
	}
	return m.Payload, manifestDescriptor(m), nil
}

func (l *Local) Blob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, error) {
	rc, _, err := l.reg.OpenBlob(ctx, repo, d)
	return rc, localErr(err)
}

func (l *Local) Referrers(ctx context.Context, repo string, d digest.Digest) ([]oci.Descriptor, error) {
	list, err := l.reg.Referrers(ctx, repo, d, "")
	return list, localErr(err)
}

// localPage is the page size of local listings.
const localPage = 1000

func (l *Local) Tags(ctx context.Context, repo string) ([]string, error) {
	return collect(func(last string) ([]string, error) { return l.reg.Tags(ctx, repo, last, localPage) })
}

func (l *Local) Repositories(ctx context.Context) ([]string, error) {
	return collect(func(last string) ([]string, error) { return l.reg.Repositories(ctx, last, localPage) })
}

// collect gathers a keyset-paginated listing.
func collect(page func(last string) ([]string, error)) ([]string, error) {
	var all []string
	last := ""
	for {
		p, err := page(last)
		if err != nil {
			return nil, localErr(err)
		}
		all = append(all, p...)
		if len(p) < localPage {
			return all, nil
		}
		last = p[len(p)-1]
	}
}

func (l *Local) HasBlob(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	_, err := l.reg.StatBlob(ctx, repo, d)
	if errors.Is(err, oci.ErrBlobUnknown) {
		return false, nil
	}
	return err == nil, err
}

func (l *Local) MountBlob(ctx context.Context, repo, from string, d digest.Digest) (bool, error) {
	return l.reg.MountBlob(registry.WithActor(ctx, l.actor), repo, from, d)
}

func (l *Local) PutBlob(ctx context.Context, repo string, desc oci.Descriptor, r io.Reader) error {
	return l.reg.PushBlob(registry.WithActor(ctx, l.actor), repo, digest.Digest(desc.Digest), r)
}

func (l *Local) PutManifest(ctx context.Context, repo, ref string, desc oci.Descriptor, payload []byte) error {
	d, err := l.reg.PushManifest(registry.WithActor(ctx, l.actor), repo, ref, desc.MediaType, payload)
	if err == nil && d != digest.Digest(desc.Digest) {
		return fmt.Errorf("%w: manifest %s stored as %s", ErrInvalid, desc.Digest, d)
	}
	return err
}

// IndexesReferrers: packreg serves the referrers API.
func (l *Local) IndexesReferrers(context.Context) (bool, error) { return true, nil }
