package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

const (
	maxManifestSize = 4 << 20
	// maxDescriptors bounds the reference checks one PUT can cost.
	maxDescriptors = 10000
	// MaxIndexDepth is how many levels of index may nest (an index of
	// image manifests is 1). Every walker of the manifest graph (copy,
	// parity, GC) can count on it; the stored depth of each child makes
	// the check one lookup per child.
	MaxIndexDepth = 8
)

func invalidManifest(format string, args ...any) error {
	return oci.Errorf(oci.ErrManifestInvalid, format, args...)
}

// parseManifest checks payload as an OCI/Docker manifest or index sent with
// Content-Type ct, and returns the record to store (without Repo).
func parseManifest(payload []byte, ct string) (*storage.Manifest, *oci.Document, error) {
	var doc oci.Document
	if err := json.Unmarshal(payload, &doc); err != nil {
		return nil, nil, invalidManifest("manifest is not valid JSON: %v", err)
	}
	if err := checkKeys(payload); err != nil {
		return nil, nil, invalidManifest("manifest reads differently in other JSON parsers: %v", err)
	}
	if doc.SchemaVersion == nil || *doc.SchemaVersion != 2 {
		return nil, nil, invalidManifest("schemaVersion must be 2")
	}
	if ct != "" {
		if parsed, _, err := mime.ParseMediaType(ct); err == nil {
			ct = parsed
		}
	}
	mt := doc.MediaType
	switch {
	case mt != "" && ct != "" && mt != ct:
		return nil, nil, invalidManifest("Content-Type %q does not match the manifest's mediaType %q", clip(ct), clip(mt))
	case mt == "":
		mt = ct
	}
	hasImage := doc.Config != nil || doc.Layers != nil
	if hasImage && doc.Manifests != nil {
		return nil, nil, invalidManifest("a document cannot have both manifests and config/layers")
	}
	if mt == "" {
		// Neither body nor header says: infer from the shape.
		mt = oci.MediaTypeImageManifest
		if doc.Manifests != nil {
			mt = oci.MediaTypeImageIndex
		}
	}
	m := &storage.Manifest{MediaType: mt, ArtifactType: doc.ArtifactType, Annotations: doc.Annotations}
	var descs []oci.DocDescriptor
	switch {
	case oci.IsImageManifest(mt):
		if doc.Manifests != nil {
			return nil, nil, invalidManifest("an image manifest cannot list manifests")
		}
		if doc.Config == nil {
			return nil, nil, invalidManifest("an image manifest needs a config")
		}
		descs = doc.Blobs()
		if m.ArtifactType == "" {
			m.ArtifactType = doc.Config.MediaType
		}
	case oci.IsIndex(mt):
		if hasImage {
			return nil, nil, invalidManifest("an index cannot have config or layers")
		}
		if doc.Manifests == nil {
			return nil, nil, invalidManifest("an index needs a manifests list")
		}
		descs = doc.Children()
	default:
		return nil, nil, invalidManifest("unsupported manifest media type %q", clip(mt))
	}
	if len(descs) > maxDescriptors {
		return nil, nil, invalidManifest("too many descriptors (%d, at most %d)", len(descs), maxDescriptors)
	}
	for i := range descs {
		d, err := checkDescriptor(&descs[i])
		if err != nil {
			return nil, nil, err
		}
		m.Refs = append(m.Refs, d)
	}
	if doc.Subject != nil {
		d, err := checkDescriptor(doc.Subject)
		if err != nil {
			return nil, nil, invalidManifest("subject: %v", err)
		}
		m.Subject = d
	}
	return m, &doc, nil
}

func checkDescriptor(d *oci.DocDescriptor) (digest.Digest, error) {
	if d.MediaType == "" {
		return "", invalidManifest("descriptor %q has no mediaType", clip(d.Digest))
	}
	dg, err := digest.Parse(d.Digest)
	if err != nil {
		return "", invalidManifest("descriptor digest: %v", err)
	}
	if d.Size == nil || *d.Size < 0 {
		return "", invalidManifest("descriptor %s needs a non-negative size", dg)
	}
	return dg, nil
}

// references are the blobs of an image manifest (its foreign layers
// aside: they live at their URLs) or the child manifests of an index,
// with the sizes their descriptors claim.
type references struct {
	repo    string
	m       *storage.Manifest
	digests []digest.Digest
	claimed []int64
}

func referencesOf(repo string, m *storage.Manifest, doc *oci.Document) *references {
	refs := &references{repo: repo, m: m}
	index := oci.IsIndex(m.MediaType)
	descs := doc.Blobs()
	if index {
		descs = doc.Children()
	}
	for _, l := range descs {
		if !index && oci.NonDistributable(l.MediaType) {
			continue
		}
		refs.digests = append(refs.digests, digest.Digest(l.Digest))
		refs.claimed = append(refs.claimed, *l.Size)
	}
	return refs
}

// check makes sure every reference is in the repository with the size
// its descriptor claims (found, in the order of refs.digests), and sets
// the depth of an index from its children's (at most MaxIndexDepth). The
// store runs it in the put's transaction, on the rows it locks against a
// garbage collection (storage.PutManifestOptions.CheckPresent): that is
// the one read of them a push needs.
func (refs *references) check(found []storage.PresentRef) error {
	index := oci.IsIndex(refs.m.MediaType)
	if index {
		refs.m.IndexDepth = 1
	}
	for i, f := range found {
		d, claimed := refs.digests[i], refs.claimed[i]
		switch {
		case index && (f.Size < 0 || !f.Manifest):
			return oci.Errorf(oci.ErrManifestBlobUnknown, "manifest %s is not in repository %s", d, refs.repo)
		case index && f.Size != claimed:
			return invalidManifest("descriptor of %s says %d bytes, stored manifest has %d", d, claimed, f.Size)
		case index && f.IndexDepth >= MaxIndexDepth:
			return invalidManifest("indexes nest too deep: %s is %d levels of index, and an index may nest at most %d",
				d, f.IndexDepth, MaxIndexDepth)
		case index:
			refs.m.IndexDepth = max(refs.m.IndexDepth, f.IndexDepth+1)
		case f.Size < 0 || f.Manifest:
			return oci.Errorf(oci.ErrManifestBlobUnknown, "blob %s is not in repository %s", d, refs.repo)
		case f.Size != claimed:
			return invalidManifest("descriptor of %s says %d bytes, stored blob has %d", d, claimed, f.Size)
		}
	}
	return nil
}

// checkBlobsNow is check before the put, for a push whose config the
// registry could not read (inlineConfigOf): one read of the blob sizes.
func (r *Registry) checkBlobsNow(ctx context.Context, refs *references) error {
	sizes, err := r.meta.BlobSizes(ctx, refs.repo, refs.digests)
	if err != nil {
		return err
	}
	found := make([]storage.PresentRef, len(sizes))
	for i, size := range sizes {
		found[i] = storage.PresentRef{Digest: refs.digests[i], Size: size}
	}
	return refs.check(found)
}

func (r *Registry) putManifest(w http.ResponseWriter, req *http.Request, rt route) error {
	if req.ContentLength > maxManifestSize {
		return oci.Errorf(oci.ErrManifestTooLarge, "manifest exceeds %d bytes", maxManifestSize)
	}
	payload, err := io.ReadAll(io.LimitReader(req.Body, maxManifestSize+1))
	if err != nil {
		return oci.Errorf(oci.ErrManifestInvalid, "reading manifest: %v", err)
	}
	tags := req.URL.Query()["tag"]
	m, err := r.pushManifest(req.Context(), rt.name, rt.ref, tags, req.Header.Get("Content-Type"), payload, nil)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Location", "/v2/"+rt.name+"/manifests/"+m.Digest.String())
	h.Set("Docker-Content-Digest", m.Digest.String())
	if m.Subject != "" {
		h.Set("OCI-Subject", m.Subject.String())
	}
	for _, t := range tags {
		h.Add("OCI-Tag", t)
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// pushManifest is the whole manifest push, for PUT and PushManifest
// alike: the reference, validation, reference checks, admission, the
// store, events. ref is the URL reference; tags are extra tags (?tag=);
// ct is the Content-Type; was, when set, is the state its tag must be in
// (PushManifestIf).
func (r *Registry) pushManifest(ctx context.Context, repo, rawRef string, tags []string, ct string, payload []byte, was *storage.TagState) (*storage.Manifest, error) {
	if err := checkRepo(repo); err != nil {
		return nil, err
	}
	ref, err := parseReference(rawRef)
	if err != nil {
		if strings.Contains(rawRef, ":") {
			return nil, err
		}
		return nil, invalidManifest("invalid tag %q", clip(rawRef))
	}
	if was != nil && ref.tag == "" {
		return nil, invalidManifest("a conditional push needs a tag, not %q", clip(rawRef))
	}
	return r.storeManifest(ctx, repo, ref, tags, ct, payload, was)
}

// storeManifest is the whole manifest push: validation, reference checks,
// admission, the store, events. ref is the URL reference; tags are extra
// tags (?tag=).
func (r *Registry) storeManifest(ctx context.Context, repo string, ref reference, tags []string, ct string, payload []byte, was *storage.TagState) (*storage.Manifest, error) {
	for _, t := range tags {
		if !oci.ValidTag(t) {
			return nil, invalidManifest("invalid tag %q", clip(t))
		}
	}
	if ref.tag != "" {
		tags = append([]string{ref.tag}, tags...)
	}
	if len(payload) > maxManifestSize {
		return nil, oci.Errorf(oci.ErrManifestTooLarge, "manifest exceeds %d bytes", maxManifestSize)
	}
	alg := digest.SHA256
	if ref.digest != "" {
		alg = ref.digest.Algorithm()
	}
	d := digest.FromBytes(alg, payload)
	if ref.digest != "" && ref.digest != d {
		return nil, oci.Errorf(oci.ErrDigestInvalid, "manifest body hashes to %s, not %s", d, ref.digest)
	}
	m, doc, err := parseManifest(payload, ct)
	if err != nil {
		return nil, err
	}
	m.Repo, m.Digest, m.Size, m.Payload, m.Created = repo, d, int64(len(payload)), payload, r.now().UTC()
	refs := referencesOf(repo, m, doc)
	cand := ManifestCandidate{Repo: repo, Digest: d, MediaType: m.MediaType, ArtifactType: m.ArtifactType,
		Subject: m.Subject, Payload: payload, Tags: tags, Actor: ActorFrom(ctx), Annotations: doc.Annotations}
	// The overwrite right before any reference is checked: a move the
	// caller may not make is DENIED, whatever else is wrong with the push.
	unmoved, denied, err := r.unmovedTags(ctx, repo, tags, d, was)
	if err != nil {
		return nil, err
	}
	if oci.IsImageManifest(m.MediaType) {
		cand.Manifest = doc.ImageManifest(m.MediaType)
		if r.inlines(cand.Manifest.Config) {
			// Read before the references are checked: the put checks them
			// in its transaction, as for any manifest, and stores nothing
			// (the index's description of this config included) unless
			// the config is this repository's, with this size; only the
			// Indexers see the bytes (admit). A read that fails answers
			// what that check would have answered first.
			if cand.Config, err = r.inlineConfigOf(ctx, cand.Manifest.Config); err != nil {
				if cerr := r.checkBlobsNow(ctx, refs); cerr != nil {
					return nil, cerr
				}
				return nil, err
			}
		}
	}
	o, err := r.admit(ctx, cand)
	if err != nil {
		return nil, err
	}
	ev := event(ctx, Event{Action: ActionManifestPush, Repo: repo, Digest: d, MediaType: m.MediaType,
		ArtifactType: m.ArtifactType, Subject: m.Subject, Size: m.Size})
	evs := []Event{ev}
	for _, t := range tags {
		ev.Action, ev.Tag = ActionTagMove, t
		evs = append(evs, ev)
	}
	// Claims, events and index changes in the transaction that writes the
	// tags: a push refused by a claim records nothing.
	o.Events = records(evs...)
	if was != nil {
		o.TagWas = []storage.TagState{*was}
	}
	o.TagWas = append(o.TagWas, unmoved...)
	o.Present, o.CheckPresent = refs.digests, refs.check
	if !oci.IsIndex(m.MediaType) {
		o.PresentBlobSizes = refs.claimed // all check asks of an image manifest's
	}
	if err := r.meta.PutManifest(ctx, m, tags, o); err != nil {
		if denied != nil && errors.Is(err, storage.ErrConflict) {
			return nil, denied // a tag appeared or moved meanwhile: now a move
		}
		var (
			ce      *storage.ClaimError
			refused *oci.Error
		)
		if errors.As(err, &refused) {
			return nil, refused // refs.check's, without the store's wrapping
		}
		if errors.As(err, &ce) {
			// Admission passed before a concurrent push bound the tag, or
			// the tag is bound to content admission does not know of.
			return nil, oci.Errorf(oci.ErrDenied, "%s:%s is bound to %s for good (an immutable tag, even after a delete); it cannot point at %s",
				repo, ce.Tag, ce.Claimed, d)
		}
		return nil, err
	}
	r.notify(ctx, evs...)
	return m, nil
}

// admit asks every Admitter, then the claims of the TagClaimers and the
// index changes of the Indexers: what the store writes with the manifest.
//
// Only the Indexers see the config's bytes (ManifestCandidate.Config):
// they are read before the put checks the config is this repository's,
// so no answer may depend on them, only what the put then stores.
func (r *Registry) admit(ctx context.Context, cand ManifestCandidate) (storage.PutManifestOptions, error) {
	var o storage.PutManifestOptions
	bare := cand
	bare.Config = nil
	for _, a := range r.admitters {
		if err := a.AdmitManifest(ctx, bare); err != nil {
			return o, err
		}
	}
	for _, a := range r.admitters {
		if c, ok := a.(TagClaimer); ok {
			cs, err := c.ClaimTags(ctx, bare)
			if err != nil {
				return o, err
			}
			o.Claims = append(o.Claims, cs...)
		}
		if ix, ok := a.(Indexer); ok {
			ch, err := ix.IndexPush(ctx, cand)
			if err != nil {
				return o, err
			}
			o.Index.Puts = append(o.Index.Puts, ch.Puts...)
			o.Index.Deletes = append(o.Index.Deletes, ch.Deletes...)
		}
	}
	return o, nil
}

// indexDelete is the index changes of the Indexers for a delete of tag
// (or, with no tag, of manifest d) in repo.
func (r *Registry) indexDelete(ctx context.Context, repo, tag string, d digest.Digest) (storage.IndexChanges, error) {
	var ix storage.IndexChanges
	for _, a := range r.admitters {
		if x, ok := a.(Indexer); ok {
			ch, err := x.IndexDelete(ctx, repo, tag, d)
			if err != nil {
				return ix, err
			}
			ix.Puts = append(ix.Puts, ch.Puts...)
			ix.Deletes = append(ix.Deletes, ch.Deletes...)
		}
	}
	return ix, nil
}

// inlines: candidates carry configs of config's media type
// (WithInlineConfig), and it is small enough.
func (r *Registry) inlines(config oci.Descriptor) bool {
	return slices.Contains(r.inlineConfig, config.MediaType) && config.Size <= MaxInlineConfig
}

// inlineConfigOf reads config, which inlines, from the blob store: whether
// it is in the repository with this size, the put checks.
func (r *Registry) inlineConfigOf(ctx context.Context, config oci.Descriptor) ([]byte, error) {
	rc, err := r.blobs.Open(ctx, digest.Digest(config.Digest), 0)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", config.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, MaxInlineConfig+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", config.Digest, err)
	}
	if int64(len(b)) != config.Size {
		return nil, fmt.Errorf("config %s: the blob store holds %d bytes, the registry %d", config.Digest, len(b), config.Size)
	}
	return b, nil
}

func (r *Registry) getManifest(w http.ResponseWriter, req *http.Request, rt route) error {
	ref, err := parseReference(rt.ref)
	if err != nil {
		return err
	}
	m, err := r.lookupManifest(req, rt.name, ref, rt.ref)
	if err != nil {
		return err
	}
	for _, g := range r.gates {
		warnings, err := g.CheckPull(req.Context(), rt.name, m.Digest, ref.tag)
		if err != nil {
			return err
		}
		for _, msg := range warnings {
			w.Header().Add("Warning", "299 - "+strconv.Quote(msg))
		}
	}
	return serveBytes(w, req, m.Digest, m.MediaType, m.Payload)
}

func (r *Registry) deleteManifest(w http.ResponseWriter, req *http.Request, rt route) error {
	ref, err := parseReference(rt.ref)
	if err != nil {
		return err
	}
	ctx := req.Context()
	if ref.tag != "" {
		if err := r.deleteTag(ctx, rt.name, ref.tag); err != nil {
			return err
		}
	} else {
		ix, err := r.indexDelete(ctx, rt.name, "", ref.digest)
		if err != nil {
			return err
		}
		ev := event(ctx, Event{Action: ActionManifestDelete, Repo: rt.name, Digest: ref.digest})
		err = r.meta.DeleteManifest(ctx, rt.name, ref.digest, storage.DeleteOptions{Events: records(ev), Index: ix})
		if errors.Is(err, storage.ErrNotFound) {
			return oci.Errorf(oci.ErrManifestUnknown, "manifest %s not found in repository %s", ref.digest, rt.name)
		}
		if err != nil {
			return err
		}
		r.notify(ctx, ev)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// deleteTag removes tag from repo (not its manifest), with the index
// changes and the event of the delete in one transaction.
func (r *Registry) deleteTag(ctx context.Context, repo, tag string) error {
	ix, err := r.indexDelete(ctx, repo, tag, "")
	if err != nil {
		return err
	}
	ev := event(ctx, Event{Action: ActionTagDelete, Repo: repo, Tag: tag})
	err = r.meta.DeleteTag(ctx, repo, tag, storage.DeleteOptions{Events: records(ev), Index: ix})
	if errors.Is(err, storage.ErrNotFound) {
		return oci.Errorf(oci.ErrManifestUnknown, "tag %s not found in repository %s", tag, repo)
	}
	if err != nil {
		return err
	}
	r.notify(ctx, ev)
	return nil
}

// unmovedTags is what a caller without the overwrite right may push: new
// tags, and tags already at d. Moving a tag that points elsewhere needs
// overwrite ("create" is never inferred for an update). Each tag's state
// as read here becomes a condition of the write (TagWas), so a tag made or
// moved by another push between this read and the commit fails the write
// instead of being moved. It returns the conditions and the refusal to
// answer if they fail; nothing when the caller may overwrite (or is the
// server itself) or the push is already conditional (was).
func (r *Registry) unmovedTags(ctx context.Context, repo string, tags []string, d digest.Digest, was *storage.TagState) (conds []storage.TagState, denied, err error) {
	denied = Allowed(ctx, repo, "overwrite")
	if denied == nil || was != nil || len(tags) == 0 {
		return nil, nil, nil
	}
	for _, t := range tags {
		if slices.ContainsFunc(conds, func(c storage.TagState) bool { return c.Tag == t }) {
			continue // one condition per tag, however often it is named
		}
		cur, err := r.meta.ResolveTag(ctx, repo, t)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			cur = ""
		case err != nil:
			return nil, nil, err
		case cur != d:
			return nil, nil, denied
		}
		conds = append(conds, storage.TagState{Tag: t, Digest: cur})
	}
	return conds, denied, nil
}
