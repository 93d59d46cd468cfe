package bundle

import (
	"fmt"
	"slices"
	"strings"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
)

// graph is what a bundle's entries reach: every manifest under each
// version it carries whole, every referrer it lists and everything under
// those, and every blob of them. The export walks its plan this way and
// the import the staged content, with one function, so both sides agree
// on what a bundle holds (its totals, its index.json, its fallback
// indexes) to the byte.
type graph struct {
	// get returns manifest d; want is its size when a descriptor gave
	// one (-1 otherwise), which it must have.
	get func(d digest.Digest, want int64) (*manifestInfo, error)
	// blob checks that blob b is there with b.Size bytes.
	blob func(b oci.Descriptor, in digest.Digest) error

	manifests map[digest.Digest]*manifestInfo
	blobs     map[digest.Digest]int64
}

func newGraph(get func(digest.Digest, int64) (*manifestInfo, error), blob func(oci.Descriptor, digest.Digest) error) *graph {
	return &graph{get: get, blob: blob, manifests: map[digest.Digest]*manifestInfo{}, blobs: map[digest.Digest]int64{}}
}

// maxNesting bounds how deep an index nests (the registry's cap) and a
// chain of referrers of referrers goes; what a bundle carries came from a
// registry that held it to the same caps.
const maxNesting = 8

// add walks manifest d and everything under it.
func (g *graph) add(d digest.Digest, want int64, depth int) (*manifestInfo, error) {
	if m, ok := g.manifests[d]; ok {
		if want >= 0 && m.desc.Size != want {
			return nil, fmt.Errorf("manifest %s is listed with %d bytes and has %d", d, want, m.desc.Size)
		}
		return m, nil
	}
	if depth > maxNesting {
		return nil, fmt.Errorf("manifest %s is nested more than %d deep", d, maxNesting)
	}
	m, err := g.get(d, want)
	if err != nil {
		return nil, err
	}
	g.manifests[d] = m
	for _, b := range m.blobs {
		if err := g.blob(b, d); err != nil {
			return nil, err
		}
		g.blobs[digest.Digest(b.Digest)] = b.Size
	}
	for _, c := range m.children {
		if _, err := g.add(digest.Digest(c.Digest), c.Size, depth+1); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// entry walks what e carries and checks that each referrer it lists is
// about the version: its subject, or the subject its cosign tag names, is
// the version or a manifest under it, or another of its referrers.
func (g *graph) entry(e *Entry) error {
	about := map[digest.Digest]bool{e.Digest: true}
	if e.Content == ContentFull {
		if _, err := g.add(e.Digest, -1, 0); err != nil {
			return fmt.Errorf("version %s:%s: %w", e.Name, e.Version, err)
		}
		g.under(e.Digest, about)
	}
	for _, r := range e.Referrers {
		about[r.Digest] = true
	}
	for _, r := range e.Referrers {
		m, err := g.add(r.Digest, -1, 0)
		if err != nil {
			return fmt.Errorf("version %s:%s: referrer: %w", e.Name, e.Version, err)
		}
		var subject digest.Digest
		if r.Tag != "" {
			subject, _, _ = oci.ParseCosignTag(r.Tag)
		} else {
			subject = m.subject
		}
		if !about[subject] {
			return fmt.Errorf("version %s:%s: referrer %s is about %q, none of the version's manifests", e.Name, e.Version, r.Digest, subject)
		}
	}
	return nil
}

// under adds d and the manifests under it to set.
func (g *graph) under(d digest.Digest, set map[digest.Digest]bool) {
	set[d] = true
	if m := g.manifests[d]; m != nil {
		for _, c := range m.children {
			if !set[digest.Digest(c.Digest)] {
				g.under(digest.Digest(c.Digest), set)
			}
		}
	}
}

// totals counts what the graph holds.
func (g *graph) totals(entries []Entry) Totals {
	t := Totals{Manifests: len(g.manifests)}
	for _, e := range entries {
		if e.Content != ContentState {
			t.Versions++
		}
	}
	for _, m := range g.manifests {
		t.Bytes += m.desc.Size
	}
	for d, size := range g.blobs {
		if _, isManifest := g.manifests[d]; !isManifest {
			t.Blobs++
			t.Bytes += size
		}
	}
	return t
}

// index is the layout index of a bundle whose manifest is bundle (and
// signature sig) over this graph, with the fallback indexes' bytes.
func (g *graph) index(bundle oci.Descriptor, sig *oci.Descriptor, entries []Entry) (*layoutIndex, map[digest.Digest][]byte) {
	x := &layoutIndex{bundle: bundle, signature: sig}
	full := make([]Entry, 0, len(entries))
	for _, e := range entries {
		if e.Content == ContentFull {
			full = append(full, e)
		}
	}
	slices.SortFunc(full, func(a, b Entry) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Version, b.Version)
	})
	for i := range full {
		if d, ok := versionDescriptor(&full[i], g.manifests[full[i].Digest]); ok {
			x.versions = append(x.versions, d)
		}
	}
	var fb map[digest.Digest][]byte
	x.fallbacks, fb = fallbackIndexes(g.manifests)
	return x, fb
}
