package registry

import (
	"context"
	"time"

	"github.com/packreg/packreg/storage"
)

const janitorLease = "registry.upload-janitor"

// RunJanitor expires idle upload sessions (data and record) and, when the
// blob store is a storage.UploadPurger, purges upload data no session
// explains, until ctx ends. Every replica may run it; a lease in the
// metadata store lets one at a time do the work. holder names this process
// in the lease.
func (r *Registry) RunJanitor(ctx context.Context, holder string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := r.ExpireUploads(ctx, holder, every*2); err != nil {
			r.log.WarnContext(ctx, "upload janitor", "err", err)
		} else if n > 0 {
			r.log.InfoContext(ctx, "expired idle uploads", "count", n)
		}
		if n, err := r.PurgeUploads(ctx, holder, every*2); err != nil {
			r.log.WarnContext(ctx, "upload janitor: purge", "err", err)
		} else if n > 0 {
			r.log.InfoContext(ctx, "purged upload leftovers", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ExpireUploads removes sessions idle for longer than the upload TTL, when
// this holder gets the lease. It returns how many it removed.
func (r *Registry) ExpireUploads(ctx context.Context, holder string, leaseTTL time.Duration) (int, error) {
	ok, err := r.meta.AcquireLease(ctx, janitorLease, holder, leaseTTL)
	if err != nil || !ok {
		return 0, err
	}
	n := 0
	for {
		stale, err := r.meta.StaleUploads(ctx, r.now().Add(-r.uploadTTL), 100)
		if err != nil {
			return n, err
		}
		for _, u := range stale {
			if err := r.blobs.Abort(ctx, u); err != nil {
				return n, err
			}
			if err := r.meta.DeleteUpload(ctx, u.ID); err != nil {
				return n, err
			}
			n++
		}
		if len(stale) < 100 {
			return n, nil
		}
	}
}

// PurgeUploads asks a blob store that is a storage.UploadPurger to remove
// upload data last written more than twice the upload TTL ago, when this
// holder gets the lease (the same one ExpireUploads takes). That catches
// what ExpireUploads cannot: data of sessions whose record is gone
// (an abort that failed half way) and leftovers of crashed attempts that
// no session names, such as S3 multipart uploads a lost answer orphaned.
// A live session writes data whenever it grows, so twice the TTL leaves
// every live session alone, but for one kept alive by empty PATCHes alone
// for that long: its next chunk then fails as an unknown upload. It
// returns how many uploads the store purged; 0 when the store has no such
// ability.
func (r *Registry) PurgeUploads(ctx context.Context, holder string, leaseTTL time.Duration) (int, error) {
	p, ok := r.blobs.(storage.UploadPurger)
	if !ok {
		return 0, nil
	}
	ok, err := r.meta.AcquireLease(ctx, janitorLease, holder, leaseTTL)
	if err != nil || !ok {
		return 0, err
	}
	return p.PurgeUploads(ctx, r.now().Add(-2*r.uploadTTL))
}
