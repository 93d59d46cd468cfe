package storage

import (
	"context"

	"github.com/packreg/packreg/digest"
)

// A blob's stored bytes can rot (a scrub finds them not hashing to the
// blob's digest); a push of the blob again brings good ones. Blob stores
// keep an existing blob as it is on a push (BlobStore.Commit,
// BlobPutter.Put), so a push that means to repair says so through its
// context, as net/http/httptrace passes its hooks: the store asks only
// once it finds the blob stored, so a push of a new blob, the common
// case, asks nothing.

// BadCheck says whether blob d's stored bytes are known bad (a scrub's
// finding).
type BadCheck func(ctx context.Context, d digest.Digest) (bool, error)

type badCheckKey struct{}

// WithBadCheck returns ctx carrying check for the Commit or Put it is
// passed to.
func WithBadCheck(ctx context.Context, check BadCheck) context.Context {
	return context.WithValue(ctx, badCheckKey{}, check)
}

// StoredBad is what a store's Commit or Put asks, with its ctx, once it
// finds blob d stored and the new bytes verified: true when ctx carries
// a BadCheck that says d's stored bytes are bad. The store then replaces
// them with the new bytes, as atomically as it publishes any blob. (A
// store may ask on a rare path too: whether a failed write to d may have
// landed, say.)
func StoredBad(ctx context.Context, d digest.Digest) (bool, error) {
	check, _ := ctx.Value(badCheckKey{}).(BadCheck)
	if check == nil {
		return false, nil
	}
	return check(ctx, d)
}
