package registry

import (
	"context"
	"time"
)

const janitorLease = "registry.upload-janitor"

// RunJanitor expires idle upload sessions (data and record) until ctx ends.
// Every replica may run it; a lease in the metadata store lets one at a time
// do the work. holder names this process in the lease.
func (r *Registry) RunJanitor(ctx context.Context, holder string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := r.ExpireUploads(ctx, holder, every*2); err != nil {
			r.log.WarnContext(ctx, "upload janitor", "err", err)
		} else if n > 0 {
			r.log.InfoContext(ctx, "expired idle uploads", "count", n)
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
		stale, err := r.meta.StaleUploads(ctx, time.Now().Add(-r.uploadTTL), 100)
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
