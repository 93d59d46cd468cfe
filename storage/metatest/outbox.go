package metatest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/packreg/packreg/storage"
)

// The outbox's delivery guarantees under concurrency: whatever the
// interleaving of writers and drains (and, on PostgreSQL, whatever the
// order in which transactions holding lower event ids commit), no event
// is lost, the audit trail records each event exactly once, and a
// consumer that acknowledges what it read sees each event once.

// eventKey names an event uniquely in these tests.
func eventKey(e storage.Event) string { return e.Action + " " + e.Target + " " + string(e.Digest) }

// tally counts how often each event was delivered.
type tally struct {
	mu   sync.Mutex
	seen map[string]int
}

func (c *tally) add(evs []storage.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range evs {
		c.seen[eventKey(e)]++
	}
}

// drainOnce reads up to n events of consumer and acknowledges them, as
// attest's worker does; it checks that a batch comes in id order.
func drainOnce(ctx context.Context, s storage.Store, consumer string, n int, c *tally) (int, error) {
	evs, err := s.PendingEvents(ctx, consumer, n)
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	ids := make([]int64, len(evs))
	for i, e := range evs {
		if i > 0 && e.ID <= evs[i-1].ID {
			return 0, fmt.Errorf("%s: events out of order: id %d after %d", consumer, e.ID, evs[i-1].ID)
		}
		ids[i] = e.ID
	}
	c.add(evs)
	return len(evs), s.AckEvents(ctx, consumer, ids...)
}

// exactly checks that every event of want was delivered exactly times
// (at least once when exactly is 0), and nothing else was.
func (c *tally) check(t *testing.T, who string, want map[string]bool, exactly int) {
	t.Helper()
	for k := range want {
		n := c.seen[k]
		if n == 0 || (exactly > 0 && n != exactly) {
			t.Errorf("%s: event %q delivered %d times", who, k, n)
		}
	}
	for k := range c.seen {
		if !want[k] {
			t.Errorf("%s: delivered %q, which no writer recorded", who, k)
		}
	}
}

var outboxCases = []testCase{
	{"ConsumerSkipsActions", func(t *testing.T, s storage.Store) {
		// A consumer's skip list keeps those actions out of its queue
		// only: the audit trail and other consumers still get them, and
		// registering again replaces the list.
		ok(t, s.AddEventConsumer(ctx(t), "index", "blob.push", "blob.mount"), "AddEventConsumer index")
		ok(t, s.AddEventConsumer(ctx(t), "all"), "AddEventConsumer all")
		ok(t, s.LinkBlob(ctx(t), "r", dg("a"), 1, ev("blob.push", "r", "a")), "LinkBlob a")
		ok(t, s.PutManifest(ctx(t), manifest("r", "m"), []string{"t"}, storage.PutManifestOptions{Events: []storage.Event{
			ev("manifest.push", "r", "m"), ev("blob.mount", "r", "m"), ev("tag.move", "r:t", "m")}}), "PutManifest")
		for consumer, want := range map[string]string{
			"index":               "[manifest.push r tag.move r:t]",
			"all":                 "[blob.push r manifest.push r blob.mount r tag.move r:t]",
			storage.AuditConsumer: "[blob.push r manifest.push r blob.mount r tag.move r:t]",
		} {
			if _, names := pending(t, s, consumer); fmt.Sprint(names) != want {
				t.Errorf("%s pending %v, want %s", consumer, names, want)
			}
		}
		ok(t, s.AddEventConsumer(ctx(t), "index", "tag.move"), "AddEventConsumer index again")
		ok(t, s.LinkBlob(ctx(t), "r", dg("b"), 1, ev("blob.push", "r", "b")), "LinkBlob b")
		ok(t, s.PutManifest(ctx(t), manifest("r", "n"), []string{"u"}, storage.PutManifestOptions{Events: []storage.Event{
			ev("manifest.push", "r", "n"), ev("tag.move", "r:u", "n")}}), "PutManifest n")
		if _, names := pending(t, s, "index"); fmt.Sprint(names) != "[manifest.push r tag.move r:t blob.push r manifest.push r]" {
			t.Errorf("index pending after re-registering %v", names)
		}
	}},
	{"ConsumerSkipsActionsExceptTargets", func(t *testing.T, s storage.Store) {
		// A SkipExcept entry keeps the action's events whose target
		// matches, for that consumer only; the same action of other
		// targets is skipped. Several puts into one repository: the
		// later ones may take a store's one-statement path.
		ok(t, s.AddEventConsumer(ctx(t), "sigs", "blob.push", storage.SkipExcept("tag.move", "%:sha256-%")), "AddEventConsumer sigs")
		ok(t, s.AddEventConsumer(ctx(t), "all"), "AddEventConsumer all")
		for i, tag := range []string{"v1", "sha256-abc.sig", "v2", "latest_sha256-x"} {
			body := fmt.Sprint("m", i)
			ok(t, s.PutManifest(ctx(t), manifest("r", body), []string{tag}, storage.PutManifestOptions{Events: []storage.Event{
				ev("manifest.push", "r", body), ev("tag.move", "r:"+tag, body)}}), "PutManifest %s", tag)
		}
		want := "[manifest.push r manifest.push r tag.move r:sha256-abc.sig manifest.push r manifest.push r]"
		if _, names := pending(t, s, "sigs"); fmt.Sprint(names) != want {
			t.Errorf("sigs pending %v, want %s", names, want)
		}
		if _, names := pending(t, s, "all"); len(names) != 8 {
			t.Errorf("all pending %v, want all 8 events", names)
		}
	}},
	{"EventIDsAreNeverGivenAgain", func(t *testing.T, s storage.Store) {
		// A consumer acknowledges by id, and an acknowledgement may come
		// late: a worker that lost its lease acknowledges what its
		// successor did. So an id names one event for good, also once
		// the queue emptied.
		ok(t, s.LinkBlob(ctx(t), "r", dg("a"), 1, ev("blob.push", "r", "a")), "LinkBlob a")
		evs, _ := pending(t, s, storage.AuditConsumer)
		first := evs[0].ID
		n, err := s.AuditEvents(ctx(t), 0)
		ok(t, err, "AuditEvents")
		if n != 1 {
			t.Fatalf("AuditEvents recorded %d events, want 1", n)
		}
		ok(t, s.LinkBlob(ctx(t), "r", dg("b"), 1, ev("blob.push", "r", "b")), "LinkBlob b")
		evs, _ = pending(t, s, storage.AuditConsumer)
		if len(evs) != 1 || evs[0].ID <= first {
			t.Fatalf("the event recorded after event %d was acknowledged: %+v, want a greater id", first, evs)
		}
		ok(t, s.AckEvents(ctx(t), storage.AuditConsumer, first), "late AckEvents")
		if _, names := pending(t, s, storage.AuditConsumer); fmt.Sprint(names) != "[blob.push r]" {
			t.Fatalf("a late acknowledgement of event %d dropped a newer event: pending %v", first, names)
		}
	}},
	{"OutboxLosesNothingUnderLoad", func(t *testing.T, s storage.Store) {
		// "index" is drained like attest's worker, by one reader that
		// acknowledges what it read; "handover" by two at once, as when
		// a worker lost its lease and another took over.
		for _, c := range []string{"index", "handover"} {
			ok(t, s.AddEventConsumer(ctx(t), c), "AddEventConsumer %s", c)
		}
		const writers, each = 8, 16
		var (
			mu   sync.Mutex
			want = map[string]bool{}
		)
		// A write records one event (a blob) or two in one transaction
		// (a manifest and its tag).
		write := func(w, i int) error {
			body := fmt.Sprintf("w%d-%d", w, i)
			evs := []storage.Event{ev("blob.push", "r", body)}
			var err error
			if i%2 == 0 {
				err = s.LinkBlob(ctx(t), "r", dg(body), 1, evs...)
			} else {
				tag := fmt.Sprintf("t%d-%d", w, i)
				evs = []storage.Event{ev("manifest.push", "r", body), ev("tag.move", "r:"+tag, body)}
				err = s.PutManifest(ctx(t), manifest("r", body), []string{tag}, storage.PutManifestOptions{Events: evs})
			}
			if err == nil {
				mu.Lock()
				for _, e := range evs {
					want[eventKey(e)] = true
				}
				mu.Unlock()
			}
			return err
		}
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					if err := write(w, i); err != nil {
						t.Errorf("write %d-%d: %v", w, i, err)
						return
					}
				}
			})
		}
		// Drains run while the writers write, as replicas would, until
		// told to stop; a final drain afterwards takes what is left.
		stop := make(chan struct{})
		var audited atomic.Int64
		index, handover := &tally{seen: map[string]int{}}, &tally{seen: map[string]int{}}
		var dwg sync.WaitGroup
		loop := func(what string, drain func() (int, error)) {
			dwg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := drain(); err != nil {
						t.Errorf("%s: %v", what, err)
						return
					}
				}
			})
		}
		auditDrain := func() (int, error) {
			n, err := s.AuditEvents(ctx(t), 5)
			audited.Add(int64(n))
			return n, err
		}
		for range 3 {
			loop("AuditEvents", auditDrain)
		}
		loop("index", func() (int, error) { return drainOnce(ctx(t), s, "index", 5, index) })
		for range 2 {
			loop("handover", func() (int, error) { return drainOnce(ctx(t), s, "handover", 5, handover) })
		}
		wg.Wait()
		close(stop)
		dwg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		// Every writer has returned and every drain has ended: one drain
		// per consumer now must find all that is left.
		for _, d := range []struct {
			what  string
			drain func() (int, error)
		}{
			{"AuditEvents", auditDrain},
			{"index", func() (int, error) { return drainOnce(ctx(t), s, "index", 5, index) }},
			{"handover", func() (int, error) { return drainOnce(ctx(t), s, "handover", 5, handover) }},
		} {
			for {
				n, err := d.drain()
				ok(t, err, "final drain of %s", d.what)
				if n == 0 {
					break
				}
			}
		}
		total := len(want)
		if total != writers*each*3/2 {
			t.Fatalf("%d distinct events written, want %d", total, writers*each*3/2)
		}
		for _, c := range []string{storage.AuditConsumer, "index", "handover"} {
			if evs, _ := pending(t, s, c); len(evs) != 0 {
				t.Fatalf("%s: %d events left pending after the final drain", c, len(evs))
			}
		}
		if got := audited.Load(); got != int64(total) {
			t.Errorf("AuditEvents reported %d events recorded, want %d", got, total)
		}
		recs, err := s.ScanAudit(ctx(t), 0, 0)
		ok(t, err, "ScanAudit")
		trail := &tally{seen: map[string]int{}}
		for _, r := range recs {
			trail.add([]storage.Event{{Action: r.Action, Target: r.Target, Digest: r.Digest}})
		}
		trail.check(t, "audit trail", want, 1)
		index.check(t, "index", want, 1)
		handover.check(t, "handover", want, 0)
		verifies(t, s, true, 0)
	}},
}
