package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"sync"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
)

// Engine copies manifests, their closure and their referrers from a
// Source to a Sink. One Engine serves one run: it remembers what it has
// seen on the sink, so content shared by many versions (an empty config,
// a common layer) is asked about once.
type Engine struct {
	src    Source
	dst    Sink
	conc   int
	retry  Retry
	log    *slog.Logger
	limits CopyLimits
	// Counts is what the run did; readable at any time.
	Counts *Counts

	blobSlots chan struct{} // bounds blob transfers across all jobs

	work   flight // "manifest|repo@digest" / "blob|repo@digest" -> its one execution
	cosign flight // side|repo -> subject hex -> cosign tags, read once

	mu       sync.Mutex
	blobAt   map[digest.Digest]string // a sink repository known to hold the blob (mount source)
	dstIndex *bool                    // does the sink index referrers itself?
}

// EngineOptions tune an Engine; zero values take the defaults.
type EngineOptions struct {
	// Concurrency bounds the versions copied at once and, separately, the
	// blobs in flight (default 4).
	Concurrency int
	Retry       Retry // default DefaultRetry
	Logger      *slog.Logger
	// Counts continues the counters of an interrupted attempt.
	Counts *Counts
	// Limits cap the work of one version (limits.go).
	Limits CopyLimits
}

// NewEngine returns an engine copying from src to dst.
func NewEngine(src Source, dst Sink, o EngineOptions) *Engine {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Retry.Attempts == 0 {
		o.Retry = DefaultRetry
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Counts == nil {
		o.Counts = &Counts{}
	}
	o.Limits.defaults()
	return &Engine{src: src, dst: dst, conc: o.Concurrency, retry: o.Retry, log: o.Logger, Counts: o.Counts, limits: o.Limits,
		blobSlots: make(chan struct{}, o.Concurrency), blobAt: map[digest.Digest]string{}}
}

// Job copies Ref (a tag or a digest) of SrcRepo to DstRepo, under the
// same tag.
type Job struct {
	SrcRepo, DstRepo, Ref string
}

// Result is a finished job.
type Result struct {
	Job
	Digest digest.Digest
	Err    error
}

// Run copies the jobs, Concurrency at a time, and calls done (when not
// nil) as each finishes. A failed job does not stop the others.
func (e *Engine) Run(ctx context.Context, jobs []Job, done func(Result)) []Result {
	e.Counts.versionsTotal.Add(int64(len(jobs)))
	results := make([]Result, len(jobs))
	slots := make(chan struct{}, e.conc)
	var wg sync.WaitGroup
	for i, j := range jobs {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			results[i] = Result{Job: j, Err: ctx.Err()}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			d, err := e.Copy(ctx, j)
			results[i] = Result{Job: j, Digest: d, Err: err}
			if err != nil {
				e.Counts.versionsFailed.Add(1)
			} else {
				e.Counts.versionsDone.Add(1)
			}
			if done != nil {
				done(results[i])
			}
		}()
	}
	wg.Wait()
	return results
}

// Copy copies one job and returns the digest it copied.
func (e *Engine) Copy(ctx context.Context, j Job) (digest.Digest, error) {
	ctx = withTally(ctx)
	var desc oci.Descriptor
	err := e.retry.do(ctx, func() (err error) {
		desc, err = e.src.Resolve(ctx, j.SrcRepo, j.Ref)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("resolve %s:%s: %w", j.SrcRepo, j.Ref, err)
	}
	var tags []string
	if _, err := digest.Parse(j.Ref); err != nil {
		tags = []string{j.Ref}
	}
	_, err = e.copyTree(ctx, j.SrcRepo, j.DstRepo, desc, tags, hopRoot)
	return digest.Digest(desc.Digest), err
}

// once runs fn for key a single time per engine; later and concurrent
// callers wait and share its outcome. first says whether fn ran here. A
// failure is not remembered: the next job that needs the same content
// tries again (after the retries of this one ran out).
func (e *Engine) once(ctx context.Context, key string, fn func() (bool, error)) (c *call, first bool) {
	return e.work.do(ctx, key, func(err error) bool { return err == nil }, func() (any, bool, error) {
		copied, err := fn()
		return nil, copied, err
	})
}

// copyTree makes desc, with everything under it and every referrer of it,
// present in dr, then points tags at it. It reports whether it copied the
// manifest itself.
func (e *Engine) copyTree(ctx context.Context, sr, dr string, desc oci.Descriptor, tags []string, h hop) (bool, error) {
	key := "manifest|" + dr + "@" + desc.Digest.String()
	if walking(ctx, key) {
		// A manifest under itself (an index listing its own subject):
		// waiting for it would wait forever; its walk is already on.
		return false, nil
	}
	ctx, err := e.enter(ctx, key, h, desc)
	if err != nil {
		return false, err
	}
	c, first := e.once(ctx, key, func() (bool, error) {
		return e.copyContent(ctx, sr, dr, desc, tags)
	})
	if c.err != nil {
		return false, c.err
	}
	rest := tags
	if first && c.copied && len(tags) > 0 {
		rest = tags[1:] // the manifest went in under the first tag
	}
	for _, t := range rest {
		if err := e.ensureTag(ctx, sr, dr, desc, t); err != nil {
			return false, err
		}
	}
	return first && c.copied, nil
}

// copyContent is copyTree's body, run once per manifest and sink repository.
func (e *Engine) copyContent(ctx context.Context, sr, dr string, desc oci.Descriptor, tags []string) (bool, error) {
	d := digest.Digest(desc.Digest)
	present, err := e.dstHasManifest(ctx, dr, d)
	if err != nil {
		return false, err
	}
	var payload []byte
	if !present || oci.IsIndex(desc.MediaType) {
		if payload, err = e.srcManifest(ctx, sr, &desc); err != nil {
			return false, err
		}
		if err := e.copyChildren(ctx, sr, dr, desc, payload, present); err != nil {
			return false, err
		}
	}
	// Referrers go before the manifest (and its tag): whoever sees the tag
	// on the sink sees the signatures too.
	if err := e.copyReferrers(ctx, sr, dr, d); err != nil {
		return false, err
	}
	if present {
		e.Counts.manifestsSkipped.Add(1)
		return false, nil
	}
	ref := d.String()
	if len(tags) > 0 {
		ref = tags[0]
	}
	if err := e.retry.do(ctx, func() error { return e.dst.PutManifest(ctx, dr, ref, desc, payload) }); err != nil {
		return false, fmt.Errorf("put manifest %s to %s: %w", ref, dr, err)
	}
	e.Counts.manifestsCopied.Add(1)
	if len(tags) > 0 {
		e.Counts.tagsMoved.Add(1)
	}
	return true, nil
}

// srcManifest reads the bytes of desc from the source, and completes desc
// from what the source says of them.
func (e *Engine) srcManifest(ctx context.Context, sr string, desc *oci.Descriptor) ([]byte, error) {
	var payload []byte
	err := e.retry.do(ctx, func() error {
		var got oci.Descriptor
		var err error
		payload, got, err = e.src.Manifest(ctx, sr, digest.Digest(desc.Digest))
		if err == nil && got.MediaType != "" {
			desc.MediaType = got.MediaType
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("manifest %s of %s: %w", desc.Digest, sr, err)
	}
	desc.Size = int64(len(payload))
	return payload, nil
}

// dstHasManifest HEADs the manifest on the sink. A refusal counts as
// absent: a packreg sink refuses pulls of archived versions, and pushing
// the same bytes again is harmless (a real permission problem fails the
// push, loudly).
func (e *Engine) dstHasManifest(ctx context.Context, dr string, d digest.Digest) (bool, error) {
	err := e.retry.do(ctx, func() error {
		_, err := e.dst.Resolve(ctx, dr, d.String())
		return err
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrDenied):
		return false, nil
	}
	return false, fmt.Errorf("check %s in %s: %w", d, dr, err)
}

// copyChildren copies what a manifest references: the child manifests of
// an index (always walked, for their referrers), the blobs of an image
// (only when the manifest itself is missing: a stored manifest's registry
// checked its blobs when it accepted it).
func (e *Engine) copyChildren(ctx context.Context, sr, dr string, desc oci.Descriptor, payload []byte, present bool) error {
	var doc oci.Document
	if err := json.Unmarshal(payload, &doc); err != nil {
		return fmt.Errorf("%w: manifest %s: %v", ErrInvalid, desc.Digest, err)
	}
	if oci.IsIndex(desc.MediaType) || doc.Manifests != nil {
		kids := doc.Children()
		if err := e.count(ctx, 0, len(kids)); err != nil {
			return err
		}
		for _, c := range kids {
			if _, err := e.copyTree(ctx, sr, dr, c.Descriptor(), nil, hopChild); err != nil {
				return err
			}
		}
		return nil
	}
	if present {
		return nil
	}
	blobs := doc.Blobs()
	errs := make([]error, len(blobs))
	var wg sync.WaitGroup
	for i, b := range blobs {
		if oci.NonDistributable(b.MediaType) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.copyBlob(ctx, sr, dr, b.Descriptor())
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// anywhereMounter is a sink that can mount a blob from whichever of its
// repositories holds it (from ""): this packreg can, remote registries are
// only asked with a repository we know has the blob.
type anywhereMounter interface{ mountsAnywhere() }

func (*Local) mountsAnywhere() {}

// copyBlob makes blob b present in dr: already there, mounted, or streamed.
func (e *Engine) copyBlob(ctx context.Context, sr, dr string, b oci.Descriptor) error {
	d := digest.Digest(b.Digest)
	c, _ := e.once(ctx, "blob|"+dr+"@"+d.String(), func() (bool, error) {
		var has bool
		err := e.retry.do(ctx, func() (err error) {
			has, err = e.dst.HasBlob(ctx, dr, d)
			return err
		})
		if err != nil {
			return false, fmt.Errorf("check blob %s in %s: %w", b.Digest, dr, err)
		}
		if has {
			e.Counts.blobsSkipped.Add(1)
			e.noteBlob(d, dr)
			return false, nil
		}
		if ok, err := e.mount(ctx, dr, d); err != nil || ok {
			return false, err
		}
		select {
		case e.blobSlots <- struct{}{}:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		defer func() { <-e.blobSlots }()
		err = e.retry.do(ctx, func() error { return e.streamBlob(ctx, sr, dr, b) })
		if err != nil {
			return false, fmt.Errorf("copy blob %s to %s: %w", b.Digest, dr, err)
		}
		e.Counts.blobsCopied.Add(1)
		e.Counts.bytesCopied.Add(b.Size)
		e.noteBlob(d, dr)
		return true, nil
	})
	return c.err
}

func (e *Engine) noteBlob(d digest.Digest, repo string) {
	e.mu.Lock()
	if _, ok := e.blobAt[d]; !ok {
		e.blobAt[d] = repo
	}
	e.mu.Unlock()
}

// mount tries a cross-repository mount on the sink.
func (e *Engine) mount(ctx context.Context, dr string, d digest.Digest) (bool, error) {
	m, ok := e.dst.(Mounter)
	if !ok {
		return false, nil
	}
	e.mu.Lock()
	from, known := e.blobAt[d]
	e.mu.Unlock()
	if !known || from == dr {
		if _, any := e.dst.(anywhereMounter); !any {
			return false, nil
		}
		from = ""
	}
	var mounted bool
	err := e.retry.do(ctx, func() (err error) {
		mounted, err = m.MountBlob(ctx, dr, from, d)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("mount blob %s into %s: %w", d, dr, err)
	}
	if mounted {
		e.Counts.blobsMounted.Add(1)
		e.noteBlob(d, dr)
	}
	return mounted, nil
}

// streamBlob pipes the source's bytes to the sink, checking them on the way.
func (e *Engine) streamBlob(ctx context.Context, sr, dr string, b oci.Descriptor) error {
	rc, err := e.src.Blob(ctx, sr, digest.Digest(b.Digest))
	if err != nil {
		return err
	}
	defer rc.Close()
	return e.dst.PutBlob(ctx, dr, b, newVerifier(rc, b))
}

// verifier passes a blob through, failing at the end when its size or
// digest is not the descriptor's: a source that serves other bytes must
// not get them stored (the sink checks too; this names the culprit).
type verifier struct {
	r    io.Reader
	h    hash.Hash
	want oci.Descriptor
	d    digest.Digest
	n    int64
}

func newVerifier(r io.Reader, want oci.Descriptor) *verifier {
	d := digest.Digest(want.Digest)
	return &verifier{r: io.LimitReader(r, want.Size+1), h: digest.NewHash(d.Algorithm()), want: want, d: d}
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.want.Size {
		return n, fmt.Errorf("%w: blob %s is longer than %d bytes", ErrInvalid, v.want.Digest, v.want.Size)
	}
	if errors.Is(err, io.EOF) {
		if v.n != v.want.Size {
			return n, fmt.Errorf("%w: blob %s ended after %d of %d bytes", io.ErrUnexpectedEOF, v.want.Digest, v.n, v.want.Size)
		}
		if got := digest.FromHash(v.d.Algorithm(), v.h); got != v.d {
			return n, fmt.Errorf("%w: blob %s hashes to %s", ErrInvalid, v.want.Digest, got)
		}
	}
	return n, err
}

// ensureTag points tag at desc on the sink unless it already does.
func (e *Engine) ensureTag(ctx context.Context, sr, dr string, desc oci.Descriptor, tag string) error {
	var cur oci.Descriptor
	err := e.retry.do(ctx, func() (err error) {
		cur, err = e.dst.Resolve(ctx, dr, tag)
		return err
	})
	if err == nil && cur.Digest == desc.Digest {
		return nil
	}
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrDenied) {
		return fmt.Errorf("check tag %s of %s: %w", tag, dr, err)
	}
	payload, err := e.srcManifest(ctx, sr, &desc)
	if err != nil {
		return err
	}
	if err := e.retry.do(ctx, func() error { return e.dst.PutManifest(ctx, dr, tag, desc, payload) }); err != nil {
		return fmt.Errorf("tag %s of %s: %w", tag, dr, err)
	}
	e.Counts.tagsMoved.Add(1)
	return nil
}

// copyReferrers copies every referrer of subject: those the source lists
// by subject, and cosign's tags about it, each with its own referrers.
func (e *Engine) copyReferrers(ctx context.Context, sr, dr string, subject digest.Digest) error {
	refs, tagged, err := e.discover(ctx, e.src, sr, subject)
	if err != nil {
		return err
	}
	if err := e.count(ctx, len(refs)+len(tagged), 0); err != nil {
		return fmt.Errorf("referrers of %s in %s: %w", subject, sr, err)
	}
	for _, r := range refs {
		copied, err := e.copyTree(ctx, sr, dr, r, nil, hopReferrer)
		if err != nil {
			return err
		}
		if copied {
			e.Counts.referrersCopied.Add(1)
		}
	}
	for tag, d := range tagged {
		copied, err := e.copyTree(ctx, sr, dr, d, []string{tag}, hopReferrer)
		if err != nil {
			return err
		}
		if copied {
			e.Counts.referrersCopied.Add(1)
		}
	}
	if len(refs) > 0 {
		return e.indexReferrers(ctx, dr, subject, refs)
	}
	return nil
}

// discover lists the referrers of subject on one side: by subject (API or
// tag-schema index) and by cosign tag (tag -> manifest).
func (e *Engine) discover(ctx context.Context, side Source, repo string, subject digest.Digest) ([]oci.Descriptor, map[string]oci.Descriptor, error) {
	var refs []oci.Descriptor
	err := e.retry.do(ctx, func() (err error) {
		refs, err = side.Referrers(ctx, repo, subject)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, nil, fmt.Errorf("referrers of %s in %s: %w", subject, repo, err)
	}
	tags, err := e.cosignTags(ctx, side, repo, subject)
	if err != nil {
		return nil, nil, err
	}
	tagged := make(map[string]oci.Descriptor, len(tags))
	for _, t := range tags {
		var d oci.Descriptor
		err := e.retry.do(ctx, func() (err error) {
			d, err = side.Resolve(ctx, repo, t)
			return err
		})
		if errors.Is(err, ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, nil, fmt.Errorf("resolve %s:%s: %w", repo, t, err)
		}
		tagged[t] = d
	}
	return refs, tagged, nil
}

// cosignTags returns the cosign tags (oci.ParseCosignTag: signatures,
// attestations and SBOMs attached by tag rather than by subject) about
// subject in repo of side. The tag list is read once per repository and
// side for the whole run.
func (e *Engine) cosignTags(ctx context.Context, side Source, repo string, subject digest.Digest) ([]string, error) {
	key := fmt.Sprintf("%p|%s", side, repo)
	c, _ := e.cosign.do(ctx, key, func(err error) bool { return err == nil }, func() (any, bool, error) {
		var tags []string
		err := e.retry.do(ctx, func() (err error) {
			tags, err = side.Tags(ctx, repo)
			return err
		})
		by := map[digest.Digest][]string{}
		for _, t := range tags {
			if d, _, ok := oci.ParseCosignTag(t); ok {
				by[d] = append(by[d], t)
			}
		}
		return by, false, err
	})
	if c.err != nil {
		return nil, fmt.Errorf("tags of %s: %w", repo, c.err)
	}
	return c.val.(map[digest.Digest][]string)[subject], nil
}

// indexReferrers keeps the tag-schema index of subject on a sink without
// the referrers API: clients there (cosign, oras, regctl) look for the
// index tagged oci.ReferrersTag. Descriptors already listed stay as they are.
func (e *Engine) indexReferrers(ctx context.Context, dr string, subject digest.Digest, refs []oci.Descriptor) error {
	indexes, err := e.sinkIndexes(ctx)
	if err != nil || indexes {
		return err
	}
	existing, err := tagSchemaReferrers(ctx, e.dst, dr, subject)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("referrers index of %s in %s: %w", subject, dr, err)
	}
	have := map[digest.Digest]bool{}
	for _, d := range existing {
		have[digest.Digest(d.Digest)] = true
	}
	merged := existing
	for _, r := range refs {
		if !have[digest.Digest(r.Digest)] {
			have[digest.Digest(r.Digest)] = true
			merged = append(merged, r)
		}
	}
	if len(merged) == len(existing) {
		return nil
	}
	payload, err := json.Marshal(oci.ReferrersIndex(merged))
	if err != nil {
		return err
	}
	desc := oci.NewDescriptor(oci.MediaTypeImageIndex, digest.FromBytes(digest.SHA256, payload), int64(len(payload)))
	tag := oci.ReferrersTag(subject)
	if err := e.retry.do(ctx, func() error { return e.dst.PutManifest(ctx, dr, tag, desc, payload) }); err != nil {
		return fmt.Errorf("referrers index %s of %s: %w", tag, dr, err)
	}
	e.Counts.tagsMoved.Add(1)
	return nil
}

// sinkIndexes asks the sink once whether it has the referrers API.
func (e *Engine) sinkIndexes(ctx context.Context) (bool, error) {
	e.mu.Lock()
	known := e.dstIndex
	e.mu.Unlock()
	if known != nil {
		return *known, nil
	}
	ri, ok := e.dst.(ReferrersIndexer)
	if !ok {
		return false, nil
	}
	var on bool
	err := e.retry.do(ctx, func() (err error) {
		on, err = ri.IndexesReferrers(ctx)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("referrers API probe: %w", err)
	}
	e.mu.Lock()
	e.dstIndex = &on
	e.mu.Unlock()
	return on, nil
}
