package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

type referrerDesc struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

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
	b, err := json.Marshal(struct {
		SchemaVersion int            `json:"schemaVersion"`
		MediaType     string         `json:"mediaType"`
		Manifests     []referrerDesc `json:"manifests"`
	}{2, MediaTypeOCIIndex, out})
	if err != nil {
		return err
	}
	return serveBytes(w, req, digest.FromBytes(digest.SHA256, b), MediaTypeOCIIndex, b)
}

// referrerList is the referrers answer in digest order. Referrers pushed by
// older clients through the tag schema (an index tagged "sha256-<hex>") are
// merged in, so both ways of attaching show up in one answer.
func (r *Registry) referrerList(ctx context.Context, repo string, d digest.Digest, at string) ([]referrerDesc, error) {
	list, err := r.meta.Referrers(ctx, repo, d, at)
	if err != nil {
		return nil, err
	}
	out := make([]referrerDesc, 0, len(list))
	seen := make(map[digest.Digest]bool, len(list))
	for _, x := range list {
		seen[x.Digest] = true
		out = append(out, referrerDesc{x.MediaType, x.Digest, x.Size, x.ArtifactType, x.Annotations})
	}
	legacy, err := r.tagSchemaReferrers(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	for _, x := range legacy {
		if !seen[x.Digest] && (at == "" || x.ArtifactType == at) {
			seen[x.Digest] = true
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b referrerDesc) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out, nil
}

// tagSchemaReferrers reads the fallback index tagged "<alg>-<hex>". Its
// descriptors are re-described from the stored manifests where possible,
// because some clients write the config media type as artifactType there.
func (r *Registry) tagSchemaReferrers(ctx context.Context, repo string, subject digest.Digest) ([]referrerDesc, error) {
	tag := subject.Algorithm() + "-" + subject.Hex()
	if !validTag(tag) {
		return nil, nil
	}
	d, err := r.meta.ResolveTag(ctx, repo, tag)
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
	if !isIndexType(idx.MediaType) {
		return nil, nil
	}
	var doc struct {
		Manifests []descriptor `json:"manifests"`
	}
	if json.Unmarshal(idx.Payload, &doc) != nil {
		return nil, nil
	}
	var out []referrerDesc
	for _, c := range doc.Manifests {
		cd, err := digest.Parse(c.Digest)
		if err != nil || c.Size == nil {
			continue
		}
		x := referrerDesc{c.MediaType, cd, *c.Size, c.ArtifactType, c.Annotations}
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
