package attest

import (
	"context"
	"slices"
	"sync"
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

// ackCounter records the sizes of the worker's acknowledgements.
type ackCounter struct {
	Store
	mu   sync.Mutex
	acks []int
}

func (c *ackCounter) AckEvents(ctx context.Context, consumer string, ids ...int64) error {
	c.mu.Lock()
	c.acks = append(c.acks, len(ids))
	c.mu.Unlock()
	return c.Store.AckEvents(ctx, consumer, ids...)
}

func (c *ackCounter) sizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.acks)
}

// A wake-up soon after a drain waits for the settling time, so the events
// committed meanwhile share one drain and one acknowledgement (a commit)
// instead of one each.
func TestWakeUpsWhileSettlingShareADrain(t *testing.T) {
	_, meta, _ := teststores.Open(t)
	st := &ackCounter{Store: meta}
	s := New(st)
	asked, release := make(chan time.Duration, 1), make(chan time.Time)
	s.settle = storage.Settler{Window: time.Hour, After: func(d time.Duration) <-chan time.Time {
		select {
		case asked <- d:
		default:
		}
		return release
	}}
	if err := s.Subscribe(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	d := digest.FromBytes(digest.SHA256, []byte("x"))
	queue := func() {
		t.Helper()
		ev := storage.Event{Action: "manifest.delete", Target: "acme/rules", Digest: d}
		if err := meta.LinkBlob(t.Context(), "acme/rules", d, 1, ev); err != nil {
			t.Fatal(err)
		}
	}
	queue()
	select {
	case w := <-asked:
		if w <= 0 || w > time.Hour {
			t.Fatalf("settling for %s", w)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the wake-up drained without settling")
	}
	before := len(st.sizes())
	for range 4 {
		queue()
	}
	if n, err := meta.CountPendingEvents(t.Context(), Consumer); err != nil || n < 4 {
		t.Fatalf("%d events pending while the worker settles (%v), want at least 4", n, err)
	}
	release <- time.Now()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := meta.CountPendingEvents(t.Context(), Consumer)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still pending", n)
		}
		time.Sleep(5 * time.Millisecond) // polling for the drain
	}
	acks := st.sizes()[before:]
	if len(acks) != 1 || acks[0] < 4 {
		t.Fatalf("acknowledgements after settling: %v, want one of all the queued events", acks)
	}
}

// pushDuringRead queues one more event for the indexer right after the
// first read of the queue that arms it: a PUT committing while a drain
// works.
type pushDuringRead struct {
	Store
	armed atomic.Bool
	push  func()
}

func (p *pushDuringRead) PendingEvents(ctx context.Context, consumer string, n int) ([]storage.Event, error) {
	evs, err := p.Store.PendingEvents(ctx, consumer, n)
	if n > 1 && p.armed.CompareAndSwap(true, false) {
		p.push()
	}
	return evs, err
}

// A drain whose batch was short leaves what was committed meanwhile to the
// drain its wake-up brings (after settling), instead of reading again at
// once and acknowledging each event of a steady stream alone.
func TestDrainLeavesLaterEventsToTheirWakeUp(t *testing.T) {
	_, meta, _ := teststores.Open(t)
	d := digest.FromBytes(digest.SHA256, []byte("x"))
	queue := func() {
		ev := storage.Event{Action: "manifest.delete", Target: "acme/rules", Digest: d}
		if err := meta.LinkBlob(t.Context(), "acme/rules", d, 1, ev); err != nil {
			t.Error(err)
		}
	}
	st := &pushDuringRead{Store: &ackCounter{Store: meta}, push: queue}
	s := New(st)
	if err := s.Subscribe(t.Context()); err != nil {
		t.Fatal(err)
	}
	queue()
	<-s.wakeup // that commit's: the one checked below is the next one's
	st.armed.Store(true)
	s.drain(t.Context(), storage.NewKeptLease(st, indexLease, "h", leaseTTL))
	if got := st.Store.(*ackCounter).sizes(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("acknowledgements %v, want one of the event queued before the drain", got)
	}
	if n, err := meta.CountPendingEvents(t.Context(), Consumer); err != nil || n != 1 {
		t.Fatalf("%d events left for the next drain (%v), want 1", n, err)
	}
	select {
	case <-s.wakeup:
	default:
		t.Fatal("the event committed during the drain did not wake the worker")
	}
}

// recordReads counts the worker's reads of the records about subjects.
type recordReads struct {
	Store
	n atomic.Int32
}

func (c *recordReads) AttestRecordsBySubject(ctx context.Context, repo string, subject digest.Digest, n int) ([]storage.AttestRecord, error) {
	c.n.Add(1)
	return c.Store.AttestRecordsBySubject(ctx, repo, subject, n)
}

func (c *recordReads) AttestRecordsBySubjects(ctx context.Context, subjects []storage.AttestSubject, n, history int) (current, superseded map[storage.AttestSubject][]storage.AttestRecord, err error) {
	c.n.Add(1)
	return c.Store.AttestRecordsBySubjects(ctx, subjects, n, history)
}

// A drain of manifest pushes that no record waits for reads the records
// once, not once per push: at 16 clients pushing, that read was one
// statement in three per PUT.
func TestDrainOfPushesReadsRecordsOnce(t *testing.T) {
	_, meta, _ := teststores.Open(t)
	st := &recordReads{Store: meta}
	s := New(st)
	if err := s.Subscribe(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		d := digest.FromBytes(digest.SHA256, []byte{byte(i)})
		ev := storage.Event{Action: "manifest.push", Target: "acme/rules", Digest: d}
		if err := meta.LinkBlob(t.Context(), "acme/rules", d, 1, ev); err != nil {
			t.Fatal(err)
		}
	}
	s.drain(t.Context(), storage.NewKeptLease(st, indexLease, "h", leaseTTL))
	if n, err := meta.CountPendingEvents(t.Context(), Consumer); err != nil || n != 0 {
		t.Fatalf("%d events left after the drain (%v)", n, err)
	}
	if n := st.n.Load(); n != 1 {
		t.Fatalf("a drain of 5 pushes read the records %d times, want 1", n)
	}
}

// pendingReads counts the worker's reads of its queue.
type pendingReads struct {
	Store
	n atomic.Int32
}

func (c *pendingReads) PendingEvents(ctx context.Context, consumer string, limit int) ([]storage.Event, error) {
	c.n.Add(1)
	return c.Store.PendingEvents(ctx, consumer, limit)
}

// A drain under a lease still fresh reads its queue once: no peek first,
// which only spares taking a lease that is not held.
func TestDrainUnderFreshLeaseDoesNotPeek(t *testing.T) {
	_, meta, _ := teststores.Open(t)
	st := &pendingReads{Store: meta}
	s := New(st)
	if err := s.Subscribe(t.Context()); err != nil {
		t.Fatal(err)
	}
	lease := storage.NewKeptLease(st, indexLease, "h", leaseTTL)
	d := digest.FromBytes(digest.SHA256, []byte("x"))
	for i := range 2 {
		ev := storage.Event{Action: "manifest.delete", Target: "acme/rules", Digest: d}
		if err := meta.LinkBlob(t.Context(), "acme/rules", d, 1, ev); err != nil {
			t.Fatal(err)
		}
		st.n.Store(0)
		s.drain(t.Context(), lease)
		if n, err := meta.CountPendingEvents(t.Context(), Consumer); err != nil || n != 0 {
			t.Fatalf("drain %d: %d events left (%v)", i, n, err)
		}
		if want := int32(2 - i); st.n.Load() != want {
			t.Fatalf("drain %d read the queue %d times, want %d", i, st.n.Load(), want)
		}
	}
}
