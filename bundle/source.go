package bundle

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/mirror"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/semver"
)

// A staged bundle is the copy engine's Source when it is imported: the
// registry it describes holds, in each repository, the versions its
// entries carry whole and the referrers they list, with their cosign tags.
var _ mirror.Source = (*staged)(nil)

func (st *staged) notFound(repo, ref string) error {
	return fmt.Errorf("%w: %s:%s is not in the bundle", mirror.ErrNotFound, repo, ref)
}

// inRepo reports whether manifest d is one the bundle carries for repo.
func (st *staged) inRepo(repo string, d digest.Digest) bool { return st.carried[repo][d] }

func (st *staged) Resolve(_ context.Context, repo, ref string) (oci.Descriptor, error) {
	var d digest.Digest
	switch {
	case semver.Valid(ref):
		d = st.full[repo][ref]
	case strings.Contains(ref, ":"):
		if parsed, err := digest.Parse(ref); err == nil && st.inRepo(repo, parsed) {
			d = parsed
		}
	default:
		d = st.tags[repo][ref]
	}
	m := st.g.manifests[d]
	if d == "" || m == nil {
		return oci.Descriptor{}, st.notFound(repo, ref)
	}
	return m.desc, nil
}

func (st *staged) Manifest(_ context.Context, repo string, d digest.Digest) ([]byte, oci.Descriptor, error) {
	m := st.g.manifests[d]
	if m == nil || !st.inRepo(repo, d) {
		return nil, oci.Descriptor{}, st.notFound(repo, d.String())
	}
	b, err := st.sp.bytes(d, maxManifest)
	return b, m.desc, err
}

func (st *staged) Blob(_ context.Context, repo string, d digest.Digest) (io.ReadCloser, error) {
	r, ok := st.sp.open(d)
	if !ok {
		return nil, st.notFound(repo, d.String())
	}
	return io.NopCloser(r), nil
}

// Referrers lists the referrers the bundle carries for repo whose subject
// is d, as the referrers API would.
func (st *staged) Referrers(_ context.Context, repo string, d digest.Digest) ([]oci.Descriptor, error) {
	var out []oci.Descriptor
	for r := range st.refs[repo] {
		if m := st.g.manifests[r]; m != nil && m.subject == d {
			out = append(out, m.desc)
		}
	}
	slices.SortFunc(out, func(a, b oci.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out, nil
}

// Tags lists the cosign tags of repo the bundle carries (version tags are
// resolved, not listed: the engine asks for cosign's only).
func (st *staged) Tags(_ context.Context, repo string) ([]string, error) {
	var out []string
	for t := range st.tags[repo] {
		out = append(out, t)
	}
	slices.Sort(out)
	return out, nil
}
