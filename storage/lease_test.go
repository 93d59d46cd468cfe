package storage_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
)

// renewAfterRelease is a lease store whose renewal (the second acquire)
// answers only once the lease was released, or its context ended: the
// order a slow database gives a renewal in flight at the release.
type renewAfterRelease struct {
	storage.Leases
	mu       sync.Mutex
	calls    int
	held     bool
	renewing chan struct{} // closed when the renewal starts
	renewed  chan struct{} // closed when the renewal has answered
	released chan struct{} // closed by ReleaseLease
}

func (l *renewAfterRelease) AcquireLease(ctx context.Context, _, _ string, _ time.Duration) (bool, error) {
	l.mu.Lock()
	l.calls++
	n := l.calls
	l.mu.Unlock()
	if n == 2 {
		close(l.renewing)
		defer close(l.renewed)
		select {
		case <-l.released:
			// Committed after the release, whatever the context does
			// meanwhile: the database had the statement already.
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = true
	return true, nil
}

func (l *renewAfterRelease) ReleaseLease(context.Context, string, string) error {
	l.mu.Lock()
	l.held = false
	l.mu.Unlock()
	close(l.released)
	return nil
}

// TestLeaseNotRetakenAfterRelease: when work under WithLease ends while
// its lease is being renewed, the lease is free afterwards. It used to be
// released first and re-taken by the renewal, so the next GC on any
// replica got 409 for a TTL (TestGCStressS3PostgresReplicas in CI), and a
// mirror remote was kept from the other workers the same way.
func TestLeaseNotRetakenAfterRelease(t *testing.T) {
	l := &renewAfterRelease{renewing: make(chan struct{}), renewed: make(chan struct{}), released: make(chan struct{})}
	ok, err := storage.WithLease(context.Background(), l, "gc", "me", 30*time.Millisecond, func(context.Context) error {
		<-l.renewing
		return nil
	})
	if !ok || err != nil {
		t.Fatalf("WithLease: %v %v", ok, err)
	}
	<-l.renewed
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held {
		t.Fatal("the lease is held again after WithLease returned")
	}
}

// lostAnswer is a lease store whose take commits and then fails: a
// COMMIT in flight when the caller's context ended (SIGTERM at a
// scheduled GC's take), the database done, the answer lost.
type lostAnswer struct {
	mu   sync.Mutex
	held bool
}

func (l *lostAnswer) AcquireLease(context.Context, string, string, time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = true
	return false, context.Canceled
}

func (l *lostAnswer) ReleaseLease(ctx context.Context, _, _ string) error {
	if err := ctx.Err(); err != nil {
		return err // a release must outlive the context that ended
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = false
	return nil
}

// TestLeaseFreeAfterTakeFailed: a take whose outcome is unknown leaves
// the lease free, even once the context has ended. It stayed held for a
// TTL, so the GC on the replica that came next got 409
// (TestGCStressS3PostgresReplicas in CI, at the replicas' SIGTERM).
func TestLeaseFreeAfterTakeFailed(t *testing.T) {
	l := &lostAnswer{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	ok, err := storage.WithLease(ctx, l, "gc", "me", 30*time.Second, func(context.Context) error {
		ran = true
		return nil
	})
	if ok || err == nil || ran {
		t.Fatalf("WithLease after a failed take: ok %v, err %v, ran %v", ok, err, ran)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held {
		t.Fatal("the lease is still held after its take failed")
	}
}
