package mirror

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/packreg/packreg/oci"
)

// Caps on the totals of one copy: remotes are hostile, and an index that
// nests forever, a referrer chain that never ends or a subject with a
// hundred thousand referrers must fail the version, not hold a worker.
// The defaults are far above what signed packs and multi-platform images
// need (cosign's signatures, attestations and SBOMs are one or two
// referrer levels; an image index is one level of nesting).

// CopyLimits bound the work of copying one version (a Job).
type CopyLimits struct {
	// IndexDepth bounds how deep indexes nest (default 8).
	IndexDepth int
	// ReferrerDepth bounds referrers of referrers (default 5).
	ReferrerDepth int
	// Referrers bounds the referrers walked under one version (default 1000).
	Referrers int
	// Manifests bounds the child manifests of the indexes under one
	// version (default 10,000).
	Manifests int
}

const (
	defaultIndexDepth    = 8
	defaultReferrerDepth = 5
	defaultReferrers     = 1000
	defaultManifests     = 10_000
)

func (l *CopyLimits) defaults() {
	if l.IndexDepth <= 0 {
		l.IndexDepth = defaultIndexDepth
	}
	if l.ReferrerDepth <= 0 {
		l.ReferrerDepth = defaultReferrerDepth
	}
	if l.Referrers <= 0 {
		l.Referrers = defaultReferrers
	}
	if l.Manifests <= 0 {
		l.Manifests = defaultManifests
	}
}

// hop is how a manifest was reached from the one above it.
type hop int

const (
	hopRoot     hop = iota // the version itself
	hopChild               // a manifest of an index
	hopReferrer            // a referrer of a manifest
)

// walk is the chain of manifests a goroutine is inside of, innermost
// first, with how deep in indexes and referrers it is.
type walk struct {
	key              string
	up               *walk
	indexes, referrs int
}

type walkKey struct{}

func walkFrom(ctx context.Context) *walk { w, _ := ctx.Value(walkKey{}).(*walk); return w }

func walking(ctx context.Context, key string) bool {
	for w := walkFrom(ctx); w != nil; w = w.up {
		if w.key == key {
			return true
		}
	}
	return false
}

// enter puts the manifest key, reached by h, on ctx's chain, or fails
// when that goes deeper than the limits.
func (e *Engine) enter(ctx context.Context, key string, h hop, desc oci.Descriptor) (context.Context, error) {
	up := walkFrom(ctx)
	w := &walk{key: key, up: up}
	if up != nil {
		w.indexes, w.referrs = up.indexes, up.referrs
	}
	switch h {
	case hopChild:
		if w.indexes++; w.indexes > e.limits.IndexDepth {
			return nil, fmt.Errorf("%w: manifest %s is nested more than %d indexes deep (limit: index depth)",
				ErrLimit, desc.Digest, e.limits.IndexDepth)
		}
	case hopReferrer:
		if w.referrs++; w.referrs > e.limits.ReferrerDepth {
			return nil, fmt.Errorf("%w: referrer %s is more than %d referrers of referrers deep (limit: referrer depth)",
				ErrLimit, desc.Digest, e.limits.ReferrerDepth)
		}
	}
	return context.WithValue(ctx, walkKey{}, w), nil
}

// tally counts what one version's copy walked, against the limits.
type tally struct {
	referrers, manifests atomic.Int64
}

type tallyKey struct{}

func withTally(ctx context.Context) context.Context {
	return context.WithValue(ctx, tallyKey{}, &tally{})
}

// count adds n referrers (or child manifests) to the version's tally.
func (e *Engine) count(ctx context.Context, referrers, manifests int) error {
	t, ok := ctx.Value(tallyKey{}).(*tally)
	if !ok {
		return nil
	}
	if n := t.referrers.Add(int64(referrers)); n > int64(e.limits.Referrers) {
		return fmt.Errorf("%w: more than %d referrers under one version (limit: referrers per version)", ErrLimit, e.limits.Referrers)
	}
	if n := t.manifests.Add(int64(manifests)); n > int64(e.limits.Manifests) {
		return fmt.Errorf("%w: more than %d manifests in the indexes of one version (limit: manifests per version)", ErrLimit, e.limits.Manifests)
	}
	return nil
}
