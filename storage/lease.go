package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"
)

// NewHolder names a worker in a lease: host, pid and a random suffix, so
// a restarted process is another holder.
func NewHolder() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// HoldLease renews lease name for holder every ttl/3 until ctx ends. When
// a renewal fails or finds another holder, it calls lost and returns:
// another worker may be doing the same work now, so the caller stops.
func HoldLease(ctx context.Context, l Leases, name, holder string, ttl time.Duration, lost func(err error)) {
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := l.AcquireLease(ctx, name, holder, ttl)
		if ctx.Err() != nil {
			return
		}
		if err != nil || !ok {
			lost(err)
			return
		}
	}
}

// WithLease runs fn holding lease name for holder: renewed every ttl/3
// while fn runs (fn's context ends, with a cause, if a renewal is lost)
// and released when fn returns. It reports false without running fn when
// another holder has the lease.
func WithLease(ctx context.Context, l Leases, name, holder string, ttl time.Duration, fn func(context.Context) error) (bool, error) {
	ok, err := l.AcquireLease(ctx, name, holder, ttl)
	if err != nil || !ok {
		return false, err
	}
	wctx, cancel := context.WithCancelCause(ctx)
	held := make(chan struct{})
	go func() {
		defer close(held)
		HoldLease(wctx, l, name, holder, ttl, func(err error) {
			cancel(fmt.Errorf("lease %s lost: %v", name, err))
		})
	}()
	defer func() {
		// The renewals stop before the release: a renewal in flight at
		// the release re-took the lease for a holder that was done, and
		// kept every other worker out for a TTL. The release outlives a
		// cancelled ctx, briefly.
		cancel(nil)
		<-held
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		_ = l.ReleaseLease(rctx, name, holder)
	}()
	return true, fn(wctx)
}
