package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// Online garbage collection: mark and sweep over the metadata store while
// pushes go on.
//
// Mark reads every manifest and blob link once, without locks, and works
// out what is garbage: a manifest is kept when it is tagged, was pushed
// within the grace period, is listed by a kept manifest (an index's
// child), or is a referrer whose subject is kept; a blob link is kept when
// it was linked within the grace period or a kept manifest of its
// repository lists it. Everything else goes: untagged manifests, the
// referrers of deleted subjects (signatures, attestations) unless
// something kept lists them, and the links nothing lists.
//
// Sweep proposes each delete to the store, which re-checks it in the
// delete's own transaction (storage.Collector): whatever a push did since
// the mark (a tag, a new parent, a link again) keeps it. Manifests go
// first, parents and subjects before what they list, then links, then the
// bytes of each digest no repository links any more: the tombstone
// handshake (BeginBlobDelete) proves no link is left before the blob
// store delete, and a push that links the digest meanwhile waits out the
// tombstone and is not acknowledged unless the bytes are still there
// (confirmLinked). Then bytes the blob store holds that no repository
// linked at the mark, written before the grace period (a crash between a
// commit and its link leaves them), go the same way. Upload sessions idle
// for longer than the grace period go too.

// DefaultGCGrace is how young a manifest, link or upload session must be
// to be kept whatever else holds (gc.grace).
const DefaultGCGrace = time.Hour

// gcActor is the actor of the events a collection records.
const gcActor = "gc"

// GCOptions says how to run a collection.
type GCOptions struct {
	// DryRun lists what would go and changes nothing.
	DryRun bool
	// Grace: nothing younger is collected (0: DefaultGCGrace).
	Grace time.Duration
	// Trigger is recorded with the run ("api", "schedule", "cli").
	Trigger string
	// MaxItems caps the items listed in the report (0: 10000); the counts
	// are always whole.
	MaxItems int
}

// GCItem is one thing a collection removed (or would remove).
type GCItem struct {
	Kind   string        `json:"kind"` // "manifest", "link", "blob", "upload"
	Repo   string        `json:"repo,omitempty"`
	Digest digest.Digest `json:"digest,omitempty"`
	ID     string        `json:"id,omitempty"` // upload session
	Size   int64         `json:"size"`
}

// GCReport is a finished collection: its record and what it removed.
type GCReport struct {
	storage.GCRun
	Items     []GCItem
	Truncated bool // more items than GCOptions.MaxItems
}

func (rep *GCReport) add(max int, it GCItem) {
	if len(rep.Items) >= max {
		rep.Truncated = true
		return
	}
	rep.Items = append(rep.Items, it)
}

type gcKey struct {
	repo string
	d    digest.Digest
}

// CollectGarbage runs one collection now and records it. A run that
// fails half way is recorded with its error and what it did until then.
func (r *Registry) CollectGarbage(ctx context.Context, o GCOptions) (*GCReport, error) {
	if o.Grace <= 0 {
		o.Grace = DefaultGCGrace
	}
	if o.MaxItems <= 0 {
		o.MaxItems = 10000
	}
	rep := &GCReport{GCRun: storage.GCRun{DryRun: o.DryRun, Trigger: o.Trigger, Started: r.now().UTC()}}
	cutoff := rep.Started.Add(-o.Grace)
	err := r.collect(ctx, o, cutoff, rep)
	rep.Finished = r.now().UTC()
	rep.Error = storage.RunError(ctx, err)
	// Recorded even when ctx ended: the run did what it did.
	if rerr := r.meta.RecordGCRun(context.WithoutCancel(ctx), &rep.GCRun); rerr != nil {
		return rep, errors.Join(err, rerr)
	}
	for _, f := range r.gcObservers {
		f(rep)
	}
	r.log.InfoContext(ctx, "garbage collection", "id", rep.ID, "dryRun", o.DryRun, "manifests", rep.Counts.Manifests,
		"links", rep.Counts.Links, "blobs", rep.Counts.Blobs, "uploads", rep.Counts.Uploads, "bytes", rep.Counts.Bytes,
		"kept", rep.Counts.Kept, "err", err)
	return rep, err
}

func (r *Registry) collect(ctx context.Context, o GCOptions, cutoff time.Time, rep *GCReport) error {
	deadManifests, deadLinks, linked, err := r.mark(ctx, cutoff)
	if err != nil {
		return err
	}
	if err := r.sweepManifests(ctx, o, cutoff, deadManifests, rep); err != nil {
		return err
	}
	gone, err := r.sweepLinks(ctx, o, cutoff, deadLinks, rep)
	if err != nil {
		return err
	}
	if err := r.sweepBytes(ctx, o, gone, rep); err != nil {
		return err
	}
	if err := r.sweepOrphans(ctx, o, cutoff, linked, rep); err != nil {
		return err
	}
	return r.sweepUploads(ctx, o, cutoff, rep)
}

// sweepOrphans deletes stored bytes that no repository linked at the
// mark and that were written before cutoff: what a crash between a
// commit and its link, or a link lost otherwise, leaves behind, which no
// link-driven sweep ever reaches. The tombstone handshake re-checks each
// before its bytes go, so a push that links one meanwhile keeps it (or
// is refused with 503, never acknowledged without bytes: a blob whose
// last byte was written before the cutoff and that is committed and
// linked while the walk passes it). Stores that cannot list their blobs
// (storage.BlobWalker) are skipped.
func (r *Registry) sweepOrphans(ctx context.Context, o GCOptions, cutoff time.Time, linked map[digest.Digest]bool, rep *GCReport) error {
	w, ok := r.blobs.(storage.BlobWalker)
	if !ok {
		return nil
	}
	orphans := map[digest.Digest]int64{}
	flush := func() error {
		err := r.sweepBytes(ctx, o, orphans, rep)
		clear(orphans)
		return err
	}
	err := w.WalkBlobs(ctx, func(d digest.Digest, size int64, written time.Time) error {
		if linked[d] || !written.Before(cutoff) {
			return nil
		}
		orphans[d] = size
		if len(orphans) < gcBatch {
			return nil
		}
		return flush()
	})
	if errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	if err != nil {
		return err
	}
	return flush()
}

// mark returns the manifests and the links that are garbage, as of the
// mark: the manifests in an order where a parent comes before its
// children and a subject before its referrers; and every digest some
// repository links, for sweepOrphans.
func (r *Registry) mark(ctx context.Context, cutoff time.Time) ([]storage.GCManifest, []storage.GCLink, map[digest.Digest]bool, error) {
	manifests := map[gcKey]*storage.GCManifest{}
	referrers := map[gcKey][]gcKey{} // subject -> its referrers
	err := r.meta.GCManifests(ctx, func(m storage.GCManifest) error {
		k := gcKey{m.Repo, m.Digest}
		manifests[k] = &m
		if m.Subject != "" {
			s := gcKey{m.Repo, m.Subject}
			referrers[s] = append(referrers[s], k)
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	live := map[gcKey]bool{} // manifests and links
	var work []gcKey
	keep := func(k gcKey) {
		if !live[k] {
			live[k] = true
			work = append(work, k)
		}
	}
	for k, m := range manifests {
		if m.Tagged || !m.Pushed.Before(cutoff) {
			keep(k)
		}
	}
	for len(work) > 0 {
		k := work[len(work)-1]
		work = work[:len(work)-1]
		m, ok := manifests[k]
		if !ok {
			continue // a blob link: lists nothing
		}
		for _, ref := range m.Refs {
			keep(gcKey{k.repo, ref})
		}
		for _, rk := range referrers[k] {
			keep(rk)
		}
	}
	var dead []storage.GCManifest
	for k, m := range manifests {
		if !live[k] {
			dead = append(dead, *m)
		}
	}
	dead = sweepOrder(dead)
	var links []storage.GCLink
	linked := map[digest.Digest]bool{}
	err = r.meta.GCLinks(ctx, func(l storage.GCLink) error {
		linked[l.Digest] = true
		if !live[gcKey{l.Repo, l.Digest}] && l.Linked.Before(cutoff) {
			links = append(links, l)
		}
		return nil
	})
	return dead, links, linked, err
}

// sweepOrder orders garbage manifests so that each comes after every
// garbage manifest that lists it or is its subject: the store keeps a
// manifest while either is still there.
func sweepOrder(dead []storage.GCManifest) []storage.GCManifest {
	idx := map[gcKey]int{}
	for i, m := range dead {
		idx[gcKey{m.Repo, m.Digest}] = i
	}
	after := make([][]int, len(dead)) // i -> those that must go after i
	blockers := make([]int, len(dead))
	for i, m := range dead {
		for _, ref := range m.Refs {
			if j, ok := idx[gcKey{m.Repo, ref}]; ok && j != i {
				after[i] = append(after[i], j)
				blockers[j]++
			}
		}
		if j, ok := idx[gcKey{m.Repo, m.Subject}]; ok && m.Subject != "" && j != i {
			after[j] = append(after[j], i)
			blockers[i]++
		}
	}
	var ready, order []int
	for i := range dead {
		if blockers[i] == 0 {
			ready = append(ready, i)
		}
	}
	for len(ready) > 0 {
		i := ready[0]
		ready = ready[1:]
		order = append(order, i)
		for _, j := range after[i] {
			if blockers[j]--; blockers[j] == 0 {
				ready = append(ready, j)
			}
		}
	}
	out := make([]storage.GCManifest, 0, len(dead))
	for _, i := range order {
		out = append(out, dead[i])
	}
	// A cycle (a referrer listed by its own subject) cannot be ordered:
	// the store keeps both, and the run counts them as kept.
	for i := range dead {
		if blockers[i] > 0 {
			out = append(out, dead[i])
		}
	}
	return out
}

func (r *Registry) sweepManifests(ctx context.Context, o GCOptions, cutoff time.Time, dead []storage.GCManifest, rep *GCReport) error {
	gctx := WithActor(ctx, gcActor)
	for _, m := range dead {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !o.DryRun {
			ix, err := r.indexDelete(gctx, m.Repo, "", m.Digest)
			if err != nil {
				return err
			}
			ev := event(gctx, Event{Action: ActionManifestDelete, Repo: m.Repo, Digest: m.Digest, Size: m.Size})
			ok, err := r.meta.SweepManifest(gctx, m.Repo, m.Digest, cutoff, storage.DeleteOptions{Events: records(ev), Index: ix})
			if err != nil {
				return err
			}
			if !ok {
				rep.Counts.Kept++
				continue
			}
			r.notify(gctx, ev)
		}
		rep.Counts.Manifests++
		rep.add(o.MaxItems, GCItem{Kind: "manifest", Repo: m.Repo, Digest: m.Digest, Size: m.Size})
	}
	return nil
}

// gcBatch is how many links or blobs one sweep transaction takes: one
// commit (an fsync) per batch, not per row, and short enough that a push
// waiting on a locked row waits little.
const gcBatch = 256

// sweepLinks unlinks the garbage links and returns the digests whose
// bytes may go now: no link to them is left that the mark saw alive.
func (r *Registry) sweepLinks(ctx context.Context, o GCOptions, cutoff time.Time, dead []storage.GCLink, rep *GCReport) (map[digest.Digest]int64, error) {
	gctx := WithActor(ctx, gcActor)
	removed := map[digest.Digest]int64{}
	for batch := range slices.Chunk(dead, gcBatch) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		gone := make([]bool, len(batch))
		evs := make([]Event, len(batch))
		if !o.DryRun {
			ls := make([]storage.LinkSweep, len(batch))
			for i, l := range batch {
				evs[i] = event(gctx, Event{Action: ActionBlobDelete, Repo: l.Repo, Digest: l.Digest, Size: l.Size})
				ls[i] = storage.LinkSweep{Repo: l.Repo, Digest: l.Digest, Events: records(evs[i])}
			}
			var err error
			if gone, err = r.meta.SweepLinks(gctx, cutoff, ls); err != nil {
				return nil, err
			}
		}
		for i, l := range batch {
			if !o.DryRun && !gone[i] {
				rep.Counts.Kept++
				continue
			}
			if !o.DryRun {
				r.notify(gctx, evs[i])
			}
			rep.Counts.Links++
			removed[l.Digest] = l.Size
			rep.add(o.MaxItems, GCItem{Kind: "link", Repo: l.Repo, Digest: l.Digest, Size: l.Size})
		}
	}
	if !o.DryRun {
		return removed, nil
	}
	// Dry: the bytes that would go are those of digests every link of
	// which would go.
	going := make(map[gcKey]bool, len(dead))
	for _, l := range dead {
		going[gcKey{l.Repo, l.Digest}] = true
	}
	err := r.meta.GCLinks(ctx, func(l storage.GCLink) error {
		if !going[gcKey{l.Repo, l.Digest}] {
			delete(removed, l.Digest)
		}
		return nil
	})
	return removed, err
}

func (r *Registry) sweepBytes(ctx context.Context, o GCOptions, gone map[digest.Digest]int64, rep *GCReport) error {
	ds := make([]digest.Digest, 0, len(gone))
	for d := range gone {
		ds = append(ds, d)
	}
	slices.Sort(ds)
	for batch := range slices.Chunk(ds, gcBatch) {
		if err := ctx.Err(); err != nil {
			return err
		}
		deleted := make([]bool, len(batch))
		if !o.DryRun {
			var err error
			if deleted, err = r.deleteBytes(ctx, batch); err != nil {
				return err
			}
		}
		for i, d := range batch {
			if !o.DryRun && !deleted[i] {
				continue // still linked somewhere, or gone already: not garbage
			}
			rep.Counts.Blobs++
			rep.Counts.Bytes += gone[d]
			rep.add(o.MaxItems, GCItem{Kind: "blob", Digest: d, Size: gone[d]})
		}
	}
	return nil
}

// deleteBytes deletes from the blob store each of ds the metadata proves
// no repository links, under tombstones (storage.Collector), and reports
// which it deleted.
func (r *Registry) deleteBytes(ctx context.Context, ds []digest.Digest) (deleted []bool, err error) {
	// The deletes end within TombstoneTTL/2 of their tombstones' time
	// (taken in BeginBlobDelete, after this), however long the look for
	// links took: writers count on it (storage.DeleteHistory).
	deadline := time.Now().Add(storage.TombstoneTTL / 2)
	free, err := r.meta.BeginBlobDelete(ctx, ds)
	defer func() {
		if eerr := r.meta.EndBlobDelete(context.WithoutCancel(ctx), ds); eerr != nil {
			err = errors.Join(err, eerr)
		}
	}()
	if err != nil {
		return nil, err
	}
	// Well within the tombstones' life: past it, writers no longer wait.
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	deleted = make([]bool, len(ds))
	for i, d := range ds {
		if !free[i] {
			continue
		}
		err := r.blobs.Delete(dctx, d)
		if errors.Is(err, storage.ErrNotFound) {
			continue // gone already (a replica's run)
		}
		if err != nil {
			return deleted, err
		}
		deleted[i] = true
	}
	return deleted, nil
}

func (r *Registry) sweepUploads(ctx context.Context, o GCOptions, cutoff time.Time, rep *GCReport) error {
	const page = 100
	for {
		n := page
		if o.DryRun {
			n = o.MaxItems + 1 // nothing goes, so no second page would differ
		}
		stale, err := r.meta.StaleUploads(ctx, cutoff, n)
		if err != nil {
			return err
		}
		for _, u := range stale {
			if !o.DryRun {
				if err := r.blobs.Abort(ctx, u); err != nil {
					return err
				}
				if err := r.meta.DeleteUpload(ctx, u.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
					return err
				}
			}
			rep.Counts.Uploads++
			rep.add(o.MaxItems, GCItem{Kind: "upload", Repo: u.Repo, ID: u.ID, Size: u.Offset})
		}
		if o.DryRun || len(stale) < n {
			return nil
		}
	}
}

// confirmLinked is the pushing side of the tombstone handshake, after a
// link of d committed: wait while a collection is deleting d's bytes,
// then acknowledge the link only if the bytes are there. Otherwise the
// link goes again and the push fails with 503: pushing the blob again
// stores it anew.
//
// The bytes are looked at even when no tombstone was seen: a collection
// that read the links before this link committed may have deleted the
// bytes (published by this push's Commit, or found there by it) and
// removed its tombstone before this read. Then the bytes are gone, and
// the look shows it; when the tombstone is still up, the wait does. One
// stat per blob push (a HEAD on S3) is the price, unless the push wrote
// the bytes itself from written on and the store keeps ended tombstones
// (storage.DeleteHistory): with no tombstone put up within the time since
// written plus TombstoneTTL, no delete can have reached them. That time is
// measured on this replica's clock (r.now) and counted back on the
// store's, so replicas' clocks need not agree.
func (r *Registry) confirmLinked(ctx context.Context, repo string, d digest.Digest, written time.Time) error {
	// A tombstone lives for one blob store delete (less than
	// storage.TombstoneTTL; an older one, left by a crash, is not seen).
	for {
		deleting, begun, err := r.blobDeleting(ctx, d, written)
		if err != nil {
			return err
		}
		if !deleting && !begun {
			return nil
		}
		if !deleting {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return r.confirmBytes(ctx, repo, d)
}

// blobDeleting is BlobDeleting for confirmLinked, and whether a delete
// of d may have begun since the bytes were written (always, unless the
// store can tell: storage.DeleteHistory).
func (r *Registry) blobDeleting(ctx context.Context, d digest.Digest, written time.Time) (deleting, begun bool, err error) {
	within, h := r.deletesWithin(written)
	if h == nil {
		deleting, err = r.meta.BlobDeleting(ctx, d)
		return deleting, true, err
	}
	return h.BlobDeletingWithin(ctx, d, within)
}

// deletesWithin is how far back a delete that could reach bytes written
// at written put its tombstone up, and the store that can tell whether
// one did; 0 and nil when it cannot: no history, an unknown written, or
// one older than what the store remembers (2*TombstoneTTL back, with a
// margin for the look itself).
func (r *Registry) deletesWithin(written time.Time) (time.Duration, storage.DeleteHistory) {
	h, ok := r.meta.(storage.DeleteHistory)
	// A clock set back meanwhile makes the time 0, not less: a tombstone
	// put up in the last TombstoneTTL always counts.
	since := max(r.now().Sub(written), 0)
	if !ok || written.IsZero() || since > storage.TombstoneTTL/2 {
		return 0, nil
	}
	return since + storage.TombstoneTTL, h
}

// confirmBytes is the end of confirmLinked, once no tombstone is up:
// d's bytes are there, or the link goes and the push fails.
func (r *Registry) confirmBytes(ctx context.Context, repo string, d digest.Digest) error {
	if err := r.bytesThere(ctx, d); !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if err := r.meta.UnlinkBlob(ctx, repo, d); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return storage.Unavailable(fmt.Sprintf("blob %s was garbage collected while this push linked it; push it again", d), nil)
}

// bytesThere stats d for confirmLinked, again through a brief backend
// outage (5 looks over about 0.6 s): the link has committed, and a look
// that fails would refuse a push whose blob stays visible. It returns
// nil, storage.ErrNotFound, or the error of the last look.
func (r *Registry) bytesThere(ctx context.Context, d digest.Digest) error {
	return storage.RetryUnavailable(ctx, 5, 20*time.Millisecond, func(ctx context.Context) error {
		_, err := r.blobs.Stat(ctx, d)
		return err
	})
}

// GCRuns lists recorded collections, newest first, with ID < before (0:
// from the newest).
func (r *Registry) GCRuns(ctx context.Context, before int64, n int) ([]storage.GCRun, error) {
	return r.meta.GCRuns(ctx, before, n)
}
