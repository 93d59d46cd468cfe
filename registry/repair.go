package registry

import (
	"context"
	"sync/atomic"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// Repair by push: a push of a blob a scrub found bad (scrub.go) whose
// bytes verify replaces the stored bytes and clears the finding, with a
// blob.repaired event. The blob store asks whether the blob is bad only
// when it finds it stored (storage.WithBadCheck): a push of a new blob
// reads nothing more, one of an existing blob one indexed row. A mount
// of a bad blob brings no bytes and is answered as an upload (linkFrom);
// HEAD says 404 for it (getBlob), so a client's push sends the bytes.

// repairing returns ctx for a push of blob d into repo, and the finish
// the push defers with its error: when the push succeeded over bytes
// found bad, it clears the finding, and its failure is the push's.
func (r *Registry) repairing(ctx context.Context, repo string, d digest.Digest) (context.Context, func(*error)) {
	var bad atomic.Bool // the store may ask on a goroutine of its own
	ctx = storage.WithBadCheck(ctx, func(ctx context.Context, d digest.Digest) (bool, error) {
		_, found, err := r.meta.BlobBad(ctx, d)
		if found {
			bad.Store(true)
		}
		return found, err
	})
	return ctx, func(err *error) {
		if *err != nil || !bad.Load() {
			return
		}
		size, serr := r.meta.BlobSize(ctx, repo, d)
		if serr == nil {
			_, serr = r.clearBad(ctx, Event{Repo: repo, Digest: d, Size: size})
		}
		*err = serr
	}
}

// clearBad removes the finding about e.Digest, whose stored bytes are
// sound again, with e as a blob.repaired event; it reports whether there
// was one.
func (r *Registry) clearBad(ctx context.Context, e Event) (bool, error) {
	e.Action = ActionBlobRepaired
	ev := event(ctx, e)
	cleared, err := r.meta.ClearBlobBad(ctx, e.Digest, ev.Record())
	if err != nil || !cleared {
		return false, err
	}
	r.log.WarnContext(ctx, "blob bytes match their digest again; reads of it are served again", "digest", e.Digest, "by", ev.Actor)
	r.notify(ctx, ev)
	return true, nil
}
