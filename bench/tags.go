package main

import (
	"context"
	"fmt"
)

const (
	bigRepo  = "bench/tags"
	fewRepo  = "bench/fewtags"
	pageSize = 1000
)

// tagName sorts in push order, so pages hold a predictable run of tags.
func tagName(i int) string { return fmt.Sprintf("v%07d", i) }

// tagsSuite measures tag listing in a large repository and whether the cost
// of a manifest PUT grows with the number of tags already in the repository
// (it should not: a tag write is one indexed row).
func (b *bench) tagsSuite(ctx context.Context) error {
	refs := newImageRefs()
	for _, repo := range []string{bigRepo, fewRepo} {
		if err := b.pushRefs(ctx, repo, refs); err != nil {
			return fmt.Errorf("%s: %w", repo, err)
		}
	}

	have := 0 // tags in bigRepo
	grow := func(to int) error {
		from := have
		label := fmt.Sprintf("fill %s to %s tags (new manifest per tag, 16 clients)", bigRepo, fmtCount(to))
		logf("%s: %s", b.backend, label)
		r, err := b.load(ctx, to-from, 16, func(ctx context.Context, i int) error {
			return b.c.putManifest(ctx, bigRepo, tagName(from+i), refs.manifest(10_000_000+from+i))
		})
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		have = to
		b.set(secTags, label, rateCell(r))
		return nil
	}
	if err := grow(b.opt.tags); err != nil {
		return err
	}
	if err := b.listTags(ctx, have); err != nil {
		return err
	}

	// The same PUTs into a repository with 10 tags and into the big one.
	for i := range 10 {
		if err := b.c.putManifest(ctx, fewRepo, tagName(i), refs.manifest(20_000_000+i)); err != nil {
			return err
		}
	}
	if err := b.timedPuts(ctx, fewRepo, 10, refs, 30_000_000); err != nil {
		return err
	}
	if b.opt.bigTags > 0 {
		if err := grow(b.opt.bigTags); err != nil {
			return err
		}
	}
	if err := b.timedPuts(ctx, bigRepo, have, refs, 40_000_000); err != nil {
		return err
	}
	if b.opt.bigTags > 0 {
		return b.listTags(ctx, have+b.opt.tagPuts)
	}
	return nil
}

// timedPuts times opt.tagPuts manifest PUTs under new tags, one client, so
// the figure is the latency of one PUT rather than the server's parallelism.
func (b *bench) timedPuts(ctx context.Context, repo string, tags int, refs imageRefs, seed int) error {
	label := fmt.Sprintf("manifest PUT into a repo with %s tags, 1 client", fmtCount(tags))
	logf("%s: %s x%d", b.backend, label, b.opt.tagPuts)
	r, err := b.load(ctx, b.opt.tagPuts, 1, func(ctx context.Context, i int) error {
		return b.c.putManifest(ctx, repo, fmt.Sprintf("put-%05d", i), refs.manifest(seed+i))
	})
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	b.set(secTags, label, rateCell(r))
	return nil
}

// listTags walks GET /v2/bigRepo/tags/list?n=1000 page by page (following
// the Link's last=, which must be the previous page's last tag, as clients
// do), restarting at the top after the last page, and times each request
// up to its answer's last byte. The first walk must see every tag.
func (b *bench) listTags(ctx context.Context, total int) error {
	label := fmt.Sprintf("tags/list?n=%d in a %s-tag repo (page walk)", pageSize, fmtCount(total))
	logf("%s: %s x%d", b.backend, label, b.opt.listReqs)
	var last string
	seen, walks, oversize := 0, 0, 0
	r, err := b.loadChecked(ctx, b.opt.listReqs, 1, func(ctx context.Context, i int) (func() error, error) {
		a, err := b.c.fetchTags(ctx, bigRepo, pageSize, last)
		return func() error {
			tags, err := a.tags()
			if err != nil {
				return err
			}
			if len(tags) > pageSize {
				oversize++
			}
			seen += len(tags)
			if a.next != "" {
				last = a.next
				return nil
			}
			if walks == 0 && seen != total {
				return fmt.Errorf("a full walk saw %d tags, want %d", seen, total)
			}
			walks++
			seen, last = 0, ""
			return nil
		}, err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	if oversize > 0 {
		b.rep.note(fmt.Sprintf("%s: %d tag pages were longer than n=%d", b.backend, oversize, pageSize))
	}
	b.set(secTags, label, rateCell(r))
	return nil
}
