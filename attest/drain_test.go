package attest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/storage"
)

// leaseCounter counts the indexing worker's lease acquisitions.
type leaseCounter struct {
	Store
	n atomic.Int32
}

func (c *leaseCounter) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	c.n.Add(1)
	return c.Store.AcquireLease(ctx, name, holder, ttl)
}

// A drain with nothing queued (a wake-up for another consumer's events)
// takes no lease: that is a write per commit for nothing.
func TestDrainWithNothingQueuedTakesNoLease(t *testing.T) {
	_, meta, _ := teststores.Open(t)
	st := &leaseCounter{Store: meta}
	s := New(st)
	if err := s.Subscribe(t.Context()); err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(digest.SHA256, []byte("x"))
	ev := storage.Event{Action: "blob.push", Target: "acme/rules", Digest: d}
	if err := meta.LinkBlob(t.Context(), "acme/rules", d, 1, ev); err != nil {
		t.Fatal(err)
	}
	lease := storage.NewKeptLease(st, indexLease, "h", leaseTTL)
	s.drain(t.Context(), lease)
	if n := st.n.Load(); n != 0 {
		t.Fatalf("a drain with nothing queued took the lease %d times", n)
	}
	ev.Action = "manifest.delete" // queued for the indexer
	if err := meta.LinkBlob(t.Context(), "acme/rules", d, 1, ev); err != nil {
		t.Fatal(err)
	}
	s.drain(t.Context(), lease)
	if n := st.n.Load(); n != 1 {
		t.Fatalf("a drain with an event queued took the lease %d times, want 1", n)
	}
	if n, err := meta.CountPendingEvents(t.Context(), Consumer); err != nil || n != 0 {
		t.Fatalf("%d events left after the drain (%v)", n, err)
	}
}

// Drains that follow each other, one per commit as a client pushes
// manifest after manifest, take the lease once, not once each: a lease
// write per drain was one more commit per push.
func TestDrainsKeepTheLease(t *testing.T) {
	_, meta, _ := teststores.Open(t)
	st := &leaseCounter{Store: meta}
	s := New(st)
	if err := s.Subscribe(t.Context()); err != nil {
		t.Fatal(err)
	}
	lease := storage.NewKeptLease(st, indexLease, "h", leaseTTL)
	d := digest.FromBytes(digest.SHA256, []byte("x"))
	for i := range 3 {
		ev := storage.Event{Action: "manifest.delete", Target: "acme/rules", Digest: d}
		if err := meta.LinkBlob(t.Context(), "acme/rules", d, 1, ev); err != nil {
			t.Fatal(err)
		}
		s.drain(t.Context(), lease)
		if n, err := meta.CountPendingEvents(t.Context(), Consumer); err != nil || n != 0 {
			t.Fatalf("drain %d: %d events left (%v)", i, n, err)
		}
	}
	if n := st.n.Load(); n != 1 {
		t.Fatalf("3 drains in a row took the lease %d times, want 1", n)
	}
	// The lease is the worker's: another holder still cannot take it.
	if ok, err := meta.AcquireLease(t.Context(), indexLease, "other", leaseTTL); err != nil || ok {
		t.Fatalf("another holder took the kept lease: %v, %v", ok, err)
	}
}
