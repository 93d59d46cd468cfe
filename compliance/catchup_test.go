package compliance

import (
	"context"
	"fmt"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// pagedStore is the fixture's store: a Store and a BacklogReader.
type pagedStore interface {
	Store
	BacklogReader
}

// recordCounter counts the compliance records the worker writes: one per
// version it evaluated.
type recordCounter struct {
	pagedStore
	n int
}

func (c *recordCounter) PutComplianceRecords(ctx context.Context, recs []storage.ComplianceRecord) error {
	c.n += len(recs)
	return c.pagedStore.PutComplianceRecords(ctx, recs)
}

// A backlog of several batches about two repositories evaluates each of
// their versions once, not once per batch: after a fill of 10,000
// versions in 100 packs, batch by batch, every version was evaluated and
// written 19 times over.
func TestCatchUpEvaluatesEachRepositoryOnce(t *testing.T) {
	f := newFixture(t, Config{Rules: []Rule{{Repositories: []string{"**"}, RequireSignature: true}}})
	f.publish("acme/a", "1.0.0")
	f.publish("acme/b", "1.0.0")
	f.step() // the first, full pass
	count := &recordCounter{pagedStore: f.svc.st.(pagedStore)}
	f.svc.st = count

	const queued = 2*batch + 10
	f.queue(queued)
	for steps := 0; ; steps++ {
		n, err := f.st.CountPendingEvents(t.Context(), Consumer)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if steps == 10 {
			t.Fatalf("%d events still queued after %d steps", n, steps)
		}
		f.step()
	}
	if count.n != 2 {
		t.Fatalf("the catch-up of %d events about 2 versions wrote %d records, want 2 (each version once)", queued, count.n)
	}
}

// queue records n manifest pushes, alternately into acme/a and acme/b.
func (f *fixture) queue(n int) {
	f.t.Helper()
	evs := make([]storage.Event, n)
	for i := range evs {
		repo := []string{"acme/a", "acme/b"}[i%2]
		evs[i] = storage.Event{Action: "manifest.push", Target: repo, Digest: digest.FromBytes(digest.SHA256, []byte{byte(i), byte(i >> 8)})}
	}
	if err := f.st.LinkBlob(f.t.Context(), "acme/a", evs[0].Digest, 2, evs...); err != nil {
		f.t.Fatal(err)
	}
}

// While attest lags past MaxDefer, a step takes one batch as before, not
// the backlog: what it takes may be evaluated before attest indexed its
// signatures, and stays so until the next full pass.
func TestLaggingAttestTakesOneBatch(t *testing.T) {
	f := newFixture(t, Config{})
	f.svc.after = "attest"
	if err := f.st.AddEventConsumer(t.Context(), "attest"); err != nil {
		t.Fatal(err)
	}
	f.step() // the first, full pass
	const queued = 2*batch + 10
	f.queue(queued)
	f.step() // defers
	if n, err := f.st.CountPendingEvents(t.Context(), Consumer); err != nil || n != queued {
		t.Fatalf("%d queued after a step while attest lags (%v), want all %d deferred", n, err, queued)
	}
	f.now = f.now.Add(MaxDefer)
	f.step()
	if n, err := f.st.CountPendingEvents(t.Context(), Consumer); err != nil || n != queued-batch {
		t.Fatalf("%d queued after the deferral ran out (%v), want %d: one batch taken", n, err, queued-batch)
	}
}

// ackSizes records the most IDs one AckEvents call acknowledged.
type ackSizes struct {
	pagedStore
	most int
}

func (a *ackSizes) AckEvents(ctx context.Context, consumer string, ids ...int64) error {
	a.most = max(a.most, len(ids))
	return a.pagedStore.AckEvents(ctx, consumer, ids...)
}

// A catch-up acknowledges its backlog a batch per transaction: the whole
// of it in one (up to maxCatchUp IDs) held the writer for all of it, and
// on SQLite kept a copy of every queue page it emptied in memory until
// the commit.
func TestCatchUpAcknowledgesInBatches(t *testing.T) {
	f := newFixture(t, Config{})
	f.step() // the first, full pass
	acks := &ackSizes{pagedStore: f.svc.st.(pagedStore)}
	f.svc.st = acks

	const queued = 2*batch + 10
	f.queue(queued)
	f.step()
	if n, err := f.st.CountPendingEvents(t.Context(), Consumer); err != nil || n != 0 {
		t.Fatalf("%d events still queued after the catch-up (%v), want none", n, err)
	}
	if acks.most > batch {
		t.Fatalf("one acknowledgement took %d IDs, want at most %d (a batch)", acks.most, batch)
	}
}

// writeSizes records the most records one PutComplianceRecords call
// stored.
type writeSizes struct {
	pagedStore
	most int
}

func (w *writeSizes) PutComplianceRecords(ctx context.Context, recs []storage.ComplianceRecord) error {
	w.most = max(w.most, len(recs))
	return w.pagedStore.PutComplianceRecords(ctx, recs)
}

// A pass stores its records 64 per transaction: on SQLite a transaction
// shared by group commit keeps a copy of every page one write touches in
// memory until the write is done, and 256 records spread over many packs
// held ~5 MiB that SQLite's allocator kept after.
func TestRecordsGoInSmallTransactions(t *testing.T) {
	f := newFixture(t, Config{})
	for i := range 100 {
		f.publish("acme/a", fmt.Sprintf("1.0.%d", i))
	}
	sizes := &writeSizes{pagedStore: f.svc.st.(pagedStore)}
	f.svc.st = sizes
	f.step() // the first, full pass
	if sizes.most != 64 {
		t.Fatalf("a pass over 100 versions stored %d records in one transaction, want 64", sizes.most)
	}
}
