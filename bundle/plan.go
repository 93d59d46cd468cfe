package bundle

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/mirror"
	"github.com/packreg/packreg/oci"
)

// planSink is the copy engine's Sink while an export plans: the engine
// walks what it would copy into the bundle (each version's closure and
// every referrer, recursively, cosign's tags included, under the
// engine's caps), and the sink records the manifests it is given and the
// blobs they reference. It claims to hold every blob, so no blob is read
// while planning; the bundle is written afterwards from the plan.
type planSink struct {
	mu        sync.Mutex
	manifests map[digest.Digest]*planned
	present   map[string]map[digest.Digest]bool   // repository → manifests put there
	tags      map[string]map[string]digest.Digest // repository → tag → manifest
	blobRepo  map[digest.Digest]string            // a repository to read each blob from
}

// planned is one manifest of the plan, and a repository it was read from.
type planned struct {
	info *manifestInfo
	repo string
}

func newPlanSink() *planSink {
	return &planSink{manifests: map[digest.Digest]*planned{}, present: map[string]map[digest.Digest]bool{},
		tags: map[string]map[string]digest.Digest{}, blobRepo: map[digest.Digest]string{}}
}

var (
	_ mirror.Sink             = (*planSink)(nil)
	_ mirror.ReferrersIndexer = (*planSink)(nil)
)

func (p *planSink) notFound(repo, ref string) error {
	return fmt.Errorf("%w: %s:%s not planned yet", mirror.ErrNotFound, repo, ref)
}

func (p *planSink) Resolve(_ context.Context, repo, ref string) (oci.Descriptor, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, err := digest.Parse(ref)
	if err != nil {
		d = p.tags[repo][ref]
	} else if !p.present[repo][d] {
		d = ""
	}
	if m := p.manifests[d]; d != "" && m != nil {
		return m.info.desc, nil
	}
	return oci.Descriptor{}, p.notFound(repo, ref)
}

// The engine reads a sink back only to learn what it has (Resolve); a
// plan holds no bytes.
func (p *planSink) Manifest(_ context.Context, repo string, d digest.Digest) ([]byte, oci.Descriptor, error) {
	return nil, oci.Descriptor{}, p.notFound(repo, d.String())
}

func (p *planSink) Blob(_ context.Context, repo string, d digest.Digest) (io.ReadCloser, error) {
	return nil, p.notFound(repo, d.String())
}

func (p *planSink) Referrers(context.Context, string, digest.Digest) ([]oci.Descriptor, error) {
	return nil, nil
}

func (p *planSink) Tags(context.Context, string) ([]string, error) { return nil, nil }

// HasBlob says yes: the plan learns a blob's size and repository from the
// manifest that references it (PutManifest), and reads it only to write.
func (p *planSink) HasBlob(context.Context, string, digest.Digest) (bool, error) { return true, nil }

func (p *planSink) PutBlob(_ context.Context, repo string, desc oci.Descriptor, _ io.Reader) error {
	return fmt.Errorf("planning an export sends no blob (%s of %s)", desc.Digest, repo)
}

func (p *planSink) PutManifest(_ context.Context, repo, ref string, desc oci.Descriptor, payload []byte) error {
	d := digest.Digest(desc.Digest)
	if got := digest.FromBytes(d.Algorithm(), payload); got != d {
		return fmt.Errorf("%w: manifest %s of %s hashes to %s", mirror.ErrInvalid, d, repo, got)
	}
	info, err := readManifest(d, payload)
	if err != nil {
		return fmt.Errorf("%w: %v", mirror.ErrInvalid, err)
	}
	if desc.MediaType != "" {
		info.desc.MediaType = desc.MediaType // as the registry stored it
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.manifests[d] == nil {
		p.manifests[d] = &planned{info: info, repo: repo}
	}
	if p.present[repo] == nil {
		p.present[repo], p.tags[repo] = map[digest.Digest]bool{}, map[string]digest.Digest{}
	}
	p.present[repo][d] = true
	if ref != d.String() {
		p.tags[repo][ref] = d
	}
	for _, b := range info.blobs {
		if _, ok := p.blobRepo[digest.Digest(b.Digest)]; !ok {
			p.blobRepo[digest.Digest(b.Digest)] = repo
		}
	}
	return nil
}

// IndexesReferrers: the bundle's fallback indexes are made from the whole
// plan (fallbackIndexes), not one subject at a time by the engine.
func (p *planSink) IndexesReferrers(context.Context) (bool, error) { return true, nil }

// referrersOf lists the referrers the plan holds in repo about d or about
// a manifest under d, and theirs, recursively: by subject, and by the
// cosign tags that name them.
func (p *planSink) referrersOf(repo string, d digest.Digest) []Referrer {
	p.mu.Lock()
	defer p.mu.Unlock()
	tagOf := map[digest.Digest]string{}
	bySubject := map[digest.Digest][]digest.Digest{}
	for tag, m := range p.tags[repo] {
		if subject, _, ok := oci.ParseCosignTag(tag); ok {
			tagOf[m] = tag
			bySubject[subject] = append(bySubject[subject], m)
		}
	}
	for m := range p.present[repo] {
		if s := p.manifests[m].info.subject; s != "" {
			if _, tagged := tagOf[m]; !tagged {
				bySubject[s] = append(bySubject[s], m)
			}
		}
	}
	var out []Referrer
	seen := map[digest.Digest]bool{}
	var walk func(digest.Digest)
	walk = func(x digest.Digest) {
		if seen[x] {
			return
		}
		seen[x] = true
		if m := p.manifests[x]; m != nil {
			for _, c := range m.info.children {
				walk(digest.Digest(c.Digest))
			}
		}
		for _, r := range bySubject[x] {
			if !seen[r] {
				out = append(out, Referrer{Digest: r, Tag: tagOf[r]})
				walk(r)
			}
		}
	}
	walk(d)
	return out
}
