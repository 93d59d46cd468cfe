package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
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

// WithLease runs fn holding lease name for holder: renewed every ttl/3
// while fn runs (fn's context ends, with a cause, if a renewal is lost)
// and released when fn returns. It reports false without running fn when
// another holder has the lease.
func WithLease(ctx context.Context, l Leases, name, holder string, ttl time.Duration, fn func(context.Context) error) (bool, error) {
	k := NewKeptLease(l, name, holder, ttl)
	ok, err := k.Run(ctx, fn)
	if ok {
		// Run stopped the renewals before this release: a renewal in
		// flight at the release re-took the lease for a holder that was
		// done, and kept every other worker out for a TTL.
		_ = k.Release(ctx)
	}
	return ok, err
}

// KeptLease is a worker's lease held across its passes: a pass that
// starts within TTL/3 of the last successful take or renewal uses the
// lease as it is, without a write. A queue worker woken by every commit
// took its lease afresh on each wake-up, one more commit per write it
// follows. The lease still expires TTL after its last renewal when the
// process dies, so another replica takes over as before, and while a pass
// runs it is renewed every TTL/3 from the last renewal:
// at no point is it older than TTL/3 plus one renewal's time. Not safe for
// concurrent passes (one worker goroutine uses it).
type KeptLease struct {
	l            Leases
	name, holder string
	ttl          time.Duration
	now          func() time.Time
	mu           sync.Mutex
	renewed      time.Time // before the last successful take; zero: not held
}

// NewKeptLease keeps lease name for holder, taken with ttl.
func NewKeptLease(l Leases, name, holder string, ttl time.Duration) *KeptLease {
	return &KeptLease{l: l, name: name, holder: holder, ttl: ttl, now: time.Now}
}

// Fresh reports whether the lease is held and Run would write nothing
// before fn: its last take is recent enough to skip a renewal.
func (k *KeptLease) Fresh() bool { return k.fresh() }

// fresh reports whether the last take is recent enough to skip a renewal.
func (k *KeptLease) fresh() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.renewed.IsZero() && k.now().Sub(k.renewed) < k.ttl/3
}

// take takes or renews the lease now; a failure or another holder
// forgets it.
func (k *KeptLease) take(ctx context.Context) (bool, error) {
	// The time before the write: the database's expiry is at least TTL
	// after it.
	start := k.now()
	ok, err := k.l.AcquireLease(ctx, k.name, k.holder, k.ttl)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil || !ok {
		k.renewed = time.Time{}
		return false, err
	}
	k.renewed = start
	return true, nil
}

// Run runs a pass holding the lease: taken or renewed first unless fresh,
// renewed every TTL/3 (counted from the last renewal) while fn runs, and
// kept, not released, when fn returns. fn's context ends with a cause if a
// renewal is lost. It reports false without running fn when another holder
// has the lease.
func (k *KeptLease) Run(ctx context.Context, fn func(context.Context) error) (bool, error) {
	if !k.fresh() {
		ok, err := k.take(ctx)
		if err != nil {
			// The take may have committed all the same (its context
			// ended while the COMMIT was in flight, as at SIGTERM): give
			// the lease up, or it keeps every other worker out for a
			// TTL. Only here, before fn runs: a failed renewal must not
			// free the lease while fn is still stopping.
			_ = k.Release(ctx)
		}
		if err != nil || !ok {
			return false, err
		}
	}
	wctx, cancel := context.WithCancelCause(ctx)
	held := make(chan struct{})
	go func() {
		defer close(held)
		k.hold(wctx, func(err error) { cancel(fmt.Errorf("lease %s lost: %v", k.name, err)) })
	}()
	defer func() {
		cancel(nil)
		<-held // a renewal in flight lands before the next pass reads renewed
	}()
	return true, fn(wctx)
}

// hold renews the lease TTL/3 after its last renewal, until ctx ends.
func (k *KeptLease) hold(ctx context.Context, lost func(error)) {
	for {
		k.mu.Lock()
		wait := k.renewed.Add(k.ttl / 3).Sub(k.now())
		k.mu.Unlock()
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		ok, err := k.take(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("held by another")
			}
			lost(err)
			return
		}
	}
}

// Release gives the lease up (when the work is done, or at shutdown) and
// forgets it. It outlives a cancelled ctx, briefly: a lease left to
// expire keeps every other worker out for a TTL.
func (k *KeptLease) Release(ctx context.Context) error {
	k.mu.Lock()
	k.renewed = time.Time{}
	k.mu.Unlock()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return k.l.ReleaseLease(rctx, k.name, k.holder)
}
