package registry_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// purger is a disk store that also is a storage.UploadPurger, recording
// the cutoffs it is asked for.
type purger struct {
	storage.BlobStore
	mu      sync.Mutex
	cutoffs []time.Time
}

func (p *purger) PurgeUploads(_ context.Context, cutoff time.Time) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutoffs = append(p.cutoffs, cutoff)
	return 1, nil
}

func (p *purger) calls() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.cutoffs...)
}

// janitorStores are one blob store and one metadata store that several
// registries (replicas) share.
func janitorStores(t *testing.T) (*purger, storage.Metadata) {
	t.Helper()
	blobs, meta, _ := teststores.Open(t)
	return &purger{BlobStore: blobs}, meta
}

func TestJanitorPurgesUnderTheLease(t *testing.T) {
	ctx := context.Background()
	p, meta := janitorStores(t)
	const ttl = time.Hour
	a := registry.New(p, meta, registry.WithUploadTTL(ttl))
	b := registry.New(p, meta, registry.WithUploadTTL(ttl))

	before := time.Now()
	n, err := a.PurgeUploads(ctx, "replica-a", time.Minute)
	if n != 1 || err != nil {
		t.Fatalf("purge on the lease holder: %d, %v; want the store's 1", n, err)
	}
	calls := p.calls()
	if len(calls) != 1 {
		t.Fatalf("store purged %d times, want 1", len(calls))
	}
	if lo, hi := before.Add(-2*ttl), time.Now().Add(-2*ttl); calls[0].Before(lo) || calls[0].After(hi) {
		t.Fatalf("cutoff %s, want now - 2×TTL (%s..%s)", calls[0], lo, hi)
	}
	// Another replica does nothing while the lease is held.
	if n, err := b.PurgeUploads(ctx, "replica-b", time.Minute); n != 0 || err != nil {
		t.Fatalf("purge without the lease: %d, %v", n, err)
	}
	if len(p.calls()) != 1 {
		t.Fatal("the replica without the lease purged")
	}
	// A store without the ability is left alone (the disk store has it:
	// hide it).
	plain := registry.New(struct{ storage.BlobStore }{p.BlobStore}, meta)
	if n, err := plain.PurgeUploads(ctx, "replica-a", time.Minute); n != 0 || err != nil {
		t.Fatalf("purge on a store that cannot: %d, %v", n, err)
	}
}

// TestRunJanitor: the background loop expires idle sessions and purges,
// and stops with its context. The registry's clock is moved past the
// session's TTL instead of waiting for it.
func TestRunJanitor(t *testing.T) {
	p, meta := janitorStores(t)
	var skew atomic.Int64
	const ttl = time.Hour
	reg := registry.New(p, meta, registry.WithUploadTTL(ttl), registry.WithLogger(slog.New(slog.DiscardHandler)),
		registry.WithClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }))
	w := do(t, reg, "POST", "/v2/janitor/blob/blobs/uploads/", nil)
	expect(t, w, 202, "")
	loc := w.Header().Get("Location")
	w = do(t, reg, "PATCH", loc, []byte("some bytes"), "Content-Type", "application/octet-stream")
	expect(t, w, 202, "")
	// Within its TTL the session is left alone.
	if n, err := reg.ExpireUploads(context.Background(), "only", time.Minute); n != 0 || err != nil {
		t.Fatalf("expiry of a fresh session: %d, %v", n, err)
	}
	expect(t, do(t, reg, "GET", loc, nil), 204, "")
	skew.Store(int64(ttl + time.Minute))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		reg.RunJanitor(ctx, "only", 10*time.Millisecond)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(p.calls()) < 2 || do(t, reg, "GET", loc, nil).Code != 404 {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %d purges, upload status %d", len(p.calls()), do(t, reg, "GET", loc, nil).Code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RunJanitor did not return after its context ended")
	}
	// The purge cutoff is twice the TTL before the registry's now.
	if c := p.calls()[0]; c.Before(time.Now().Add(-ttl)) {
		t.Errorf("purge cutoff %s: not from the registry's clock", c)
	}
}
