package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// referrers answers GET /v2/<name>/referrers/<digest>: an image index of the
// manifests whose subject is the digest.
func (r *Registry) referrers(w http.ResponseWriter, req *http.Request, rt route) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	at := req.URL.Query().Get("artifactType")
	out, err := r.referrerList(req.Context(), rt.name, d, at)
	if err != nil {
		return err
	}
	if at != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	b, err := json.Marshal(oci.ReferrersIndex(out))
	if err != nil {
		return err
	}
	return serveBytes(w, req, digest.FromBytes(digest.SHA256, b), oci.MediaTypeImageIndex, b)
}

// referrerList is the referrers answer in digest order, never nil.
// Referrers pushed by older clients through the tag schema (an index
// tagged oci.ReferrersTag) are merged in, so both ways of attaching show up
// in one answer.
func (r *Registry) referrerList(ctx context.Context, repo string, d digest.Digest, at string) ([]oci.Descriptor, error) {
	list, err := r.meta.Referrers(ctx, repo, d, at)
	if err != nil {
		return nil, err
	}
	out := make([]oci.Descriptor, 0, len(list))
	seen := make(map[digest.Digest]bool, len(list))
	for _, x := range list {
		seen[digest.Digest(x.Digest)] = true
		out = append(out, x)
	}
	legacy, err := r.tagSchemaReferrers(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	for _, x := range legacy {
		if !seen[digest.Digest(x.Digest)] && (at == "" || x.ArtifactType == at) {
			seen[digest.Digest(x.Digest)] = true
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b oci.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out, nil
}

// tagSchemaReferrers reads the fallback index tagged oci.ReferrersTag. Its
// descriptors are re-described from the stored manifests where possible,
// because some clients write the config media type as artifactType there.
func (r *Registry) tagSchemaReferrers(ctx context.Context, repo string, subject digest.Digest) ([]oci.Descriptor, error) {
	d, err := r.meta.ResolveTag(ctx, repo, oci.ReferrersTag(subject))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	idx, err := r.meta.GetManifest(ctx, repo, d)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !oci.IsIndex(idx.MediaType) {
		return nil, nil
	}
	var doc oci.Document
	if json.Unmarshal(idx.Payload, &doc) != nil {
		return nil, nil
	}
	var out []oci.Descriptor
	for _, c := range doc.Children() {
		cd, err := digest.Parse(c.Digest)
		if err != nil || c.Size == nil {
			continue
		}
		x := oci.NewDescriptor(c.MediaType, cd, *c.Size)
		x.ArtifactType, x.Annotations = c.ArtifactType, c.Annotations
		if m, err := r.meta.GetManifest(ctx, repo, cd); err == nil {
			x.MediaType, x.Size, x.ArtifactType = m.MediaType, m.Size, m.ArtifactType
			if x.Annotations == nil {
				x.Annotations = m.Annotations
			}
		}
		out = append(out, x)
	}
	return out, nil
}
