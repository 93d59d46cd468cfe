package metatest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
)

// A store that audits inline (storage.InlineAuditor) appends a change's
// audit records in the transaction that makes the change: a committed
// write always has its records, with no drain, and a write whose records
// cannot be appended does not happen.

func inline(t *testing.T, s storage.Store) {
	t.Helper()
	in, can := s.(storage.InlineAuditor)
	if !can {
		t.Skipf("%T cannot audit inline", s)
	}
	in.AuditInline()
}

// trail lists the records as "action target digest", oldest first.
func trail(t *testing.T, s storage.Store) []string {
	t.Helper()
	recs, err := s.ScanAudit(ctx(t), 0, 0)
	ok(t, err, "ScanAudit")
	var out []string
	for _, r := range recs {
		out = append(out, r.Action+" "+r.Target+" "+string(r.Digest))
	}
	return out
}

var inlineAuditCases = []testCase{
	{"InlineAuditCommitsWithTheWrite", func(t *testing.T, s storage.Store) {
		inline(t, s)
		ok(t, s.AddEventConsumer(ctx(t), "index"), "AddEventConsumer")
		b := ev("blob.push", "r", "b")
		ok(t, s.LinkBlob(ctx(t), "r", dg("b"), 1, b), "LinkBlob")
		ok(t, s.PutManifest(ctx(t), manifest("r", "m1"), []string{"v1"},
			storage.PutManifestOptions{Events: []storage.Event{ev("manifest.push", "r", "m1"), ev("tag.move", "r:v1", "m1")}}), "PutManifest")
		is(t, s.DeleteTag(ctx(t), "r", "nope", storage.DeleteOptions{Events: []storage.Event{ev("tag.delete", "r:nope", "")}}), storage.ErrNotFound, "DeleteTag unknown")
		// No drain ran: the records are there because the writes committed.
		want := fmt.Sprint([]string{"blob.push r " + string(dg("b")), "manifest.push r " + string(dg("m1")), "tag.move r:v1 " + string(dg("m1"))})
		if got := fmt.Sprint(trail(t, s)); got != want {
			t.Fatalf("trail after the writes = %s, want %s", got, want)
		}
		recs, err := s.ScanAudit(ctx(t), 0, 1)
		ok(t, err, "ScanAudit")
		if r := recs[0]; !r.At.Equal(b.At) || r.Actor != b.Actor || r.Details["size"] != "1" {
			t.Fatalf("record of the blob push %+v, want the event's time, actor and details (%+v)", r, b)
		}
		if _, names := pending(t, s, storage.AuditConsumer); len(names) != 0 {
			t.Fatalf("events queued for the trail although it records inline: %v", names)
		}
		if _, names := pending(t, s, "index"); fmt.Sprint(names) != "[blob.push r manifest.push r tag.move r:v1]" {
			t.Fatalf("the other consumers' queue = %v", names)
		}
		n, err := s.AuditEvents(ctx(t), 0)
		if err != nil || n != 0 {
			t.Fatalf("AuditEvents = %d, %v; nothing is left to record", n, err)
		}
		verifies(t, s, true, 0)
	}},
	{"InlineAuditFailureFailsTheWrite", func(t *testing.T, s storage.Store) {
		inline(t, s)
		ok(t, s.LinkBlob(ctx(t), "r", dg("a"), 1, ev("blob.push", "r", "a")), "LinkBlob a")
		// Without its head the chain cannot be extended: the write must
		// fail whole, leaving neither the change nor an event behind.
		tamper(t, s, "DELETE FROM audit_head WHERE id = 1")
		if err := s.LinkBlob(ctx(t), "r", dg("b"), 1, ev("blob.push", "r", "b")); err == nil {
			t.Fatal("LinkBlob committed although its audit record could not be appended")
		}
		if _, err := s.BlobSize(ctx(t), "r", dg("b")); err == nil {
			t.Fatal("the blob link committed without its audit record")
		}
		if _, names := pending(t, s, storage.AuditConsumer); len(names) != 0 {
			t.Fatalf("events queued by a write that failed: %v", names)
		}
		if got := trail(t, s); len(got) != 1 {
			t.Fatalf("trail = %v, want the first push only", got)
		}
	}},
	{"InlineAuditConcurrentWriters", func(t *testing.T, s storage.Store) {
		inline(t, s)
		// Writers at once (one group-commit batch on SQLite; on PostgreSQL
		// one at the head appends inline and the others queue), half of
		// them failing: once each write's drain ran, as audit.Recorder's
		// runs after every commit that queued for the trail, exactly the
		// writes that committed are recorded, once each, in one unbroken
		// chain. The small batch makes drains that share a run go on
		// until one finds the queue empty.
		s.OnEvents(func(c context.Context) {
			for {
				n, err := s.AuditEvents(c, 2)
				if err != nil {
					t.Errorf("AuditEvents: %v", err)
				}
				if err != nil || n < 2 {
					return
				}
			}
		})
		const n = 24
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				body := fmt.Sprint("blob", i)
				if i%2 == 1 {
					errs[i] = s.UnlinkBlob(ctx(t), "r", dg(body), ev("blob.delete", "r", body))
					return
				}
				errs[i] = s.LinkBlob(ctx(t), "r", dg(body), 1, ev("blob.push", "r", body))
			})
		}
		wg.Wait()
		want := map[string]bool{}
		for i, err := range errs {
			if i%2 == 1 {
				is(t, err, storage.ErrNotFound, "UnlinkBlob of a blob never linked")
				continue
			}
			ok(t, err, "LinkBlob %d", i)
			want["blob.push r "+string(dg(fmt.Sprint("blob", i)))] = true
		}
		got := trail(t, s)
		seen := map[string]bool{}
		for _, r := range got {
			if !want[r] || seen[r] {
				t.Fatalf("trail %v: %q is not one committed write's single record", got, r)
			}
			seen[r] = true
		}
		if len(seen) != len(want) {
			t.Fatalf("trail has %d records, want %d", len(seen), len(want))
		}
		if _, names := pending(t, s, storage.AuditConsumer); len(names) != 0 {
			t.Fatalf("still queued for the trail after every write's drain: %v", names)
		}
		verifies(t, s, true, 0)
	}},
	{"InlineAuditWakesOnlyForQueuedEvents", func(t *testing.T, s storage.Store) {
		ok(t, s.AddEventConsumer(ctx(t), "index", "blob.push"), "AddEventConsumer")
		var wakes atomic.Int64
		s.OnEvents(func(context.Context) { wakes.Add(1) })
		// Queued for the audit consumer: its drainer must be woken.
		ok(t, s.LinkBlob(ctx(t), "r", dg("a"), 1, ev("blob.push", "r", "a")), "LinkBlob a")
		if n := wakes.Load(); n != 1 {
			t.Fatalf("a blob push queued for the trail woke the listeners %d times, want 1", n)
		}
		// Recorded before inline auditing starts (audit.Recorder's Flush
		// before its Watch): a write queues behind what waits for the
		// trail, to keep the trail in the order of the commits.
		if n, err := s.AuditEvents(ctx(t), 0); err != nil || n != 1 {
			t.Fatalf("AuditEvents = %d, %v; want a's push recorded", n, err)
		}
		inline(t, s)
		// The trail records it inline and index skips it: nothing to drain.
		ok(t, s.LinkBlob(ctx(t), "r", dg("b"), 1, ev("blob.push", "r", "b")), "LinkBlob b")
		if n := wakes.Load(); n != 1 {
			t.Fatalf("a blob push that queued nothing woke the listeners (%d wake-ups, want 1)", n)
		}
		ok(t, s.PutManifest(ctx(t), manifest("r", "m1"), nil,
			storage.PutManifestOptions{Events: []storage.Event{ev("manifest.push", "r", "m1")}}), "PutManifest")
		if n := wakes.Load(); n != 2 {
			t.Fatalf("a manifest push queued for index woke the listeners %d times in all, want 2", n)
		}
	}},
	{"InlineAuditDrainAfterAnInlineWriteReadsNothing", func(t *testing.T, s storage.Store) {
		// The audit drain a write wakes (audit.Recorder.Watch) must not
		// cost a round trip when that write appended its records itself.
		obs, observable := s.(storage.OpsObservable)
		if !observable {
			t.Skipf("%T does not report its statements", s)
		}
		ok(t, s.AddEventConsumer(ctx(t), "index"), "AddEventConsumer")
		inline(t, s)
		var draining atomic.Bool
		var stmts, wakes atomic.Int64
		obs.ObserveOps(func(string, time.Duration, error) {
			if draining.Load() {
				stmts.Add(1)
			}
		})
		s.OnEvents(func(c context.Context) {
			draining.Store(true)
			defer draining.Store(false)
			wakes.Add(1)
			if n, err := s.AuditEvents(c, 0); err != nil || n != 0 {
				t.Errorf("AuditEvents after an inline write = %d, %v; want nothing to record", n, err)
			}
		})
		ok(t, s.PutManifest(ctx(t), manifest("r", "m1"), []string{"v1"},
			storage.PutManifestOptions{Events: []storage.Event{ev("manifest.push", "r", "m1"), ev("tag.move", "r:v1", "m1")}}), "PutManifest")
		if wakes.Load() != 1 {
			t.Fatalf("a push queued for index woke the listeners %d times, want 1", wakes.Load())
		}
		if n := stmts.Load(); n != 0 {
			t.Fatalf("the audit drain woken by a write that recorded inline ran %d statements, want none", n)
		}
		if got := trail(t, s); len(got) != 2 {
			t.Fatalf("trail = %v, want the push and the tag move", got)
		}
		verifies(t, s, true, 0)
	}},
	{"InlineAuditQueuesWhileTheHeadStaysLocked", func(t *testing.T, s storage.Store) {
		inline(t, s)
		link(t, s, "r", dg("a"), 1) // a repository the store knows (PostgreSQL pipelines the link)
		// Someone holds the chain head (a long drain, an operator): a
		// write must not wait for them, nor commit without its record's
		// event. (SQLite has no table locks: its writer holds the one lock.)
		lock, err := rawDB(t, s).BeginTx(ctx(t), nil)
		ok(t, err, "BeginTx")
		defer lock.Rollback()
		if _, err := lock.ExecContext(ctx(t), "LOCK TABLE audit_head IN EXCLUSIVE MODE"); err != nil {
			t.Skipf("no table locks here: %v", err)
		}
		ok(t, s.LinkBlob(ctx(t), "r", dg("b"), 1, ev("blob.push", "r", "b")), "LinkBlob while the head is locked")
		if _, names := pending(t, s, storage.AuditConsumer); fmt.Sprint(names) != "[blob.push r]" {
			t.Fatalf("queued for the trail while its head was locked: %v, want the push", names)
		}
		ok(t, lock.Rollback(), "release the head")
		n, err := s.AuditEvents(ctx(t), 0)
		if err != nil || n != 1 {
			t.Fatalf("AuditEvents = %d, %v; want the queued push recorded", n, err)
		}
		if got := trail(t, s); fmt.Sprint(got) != "[blob.push r "+string(dg("b"))+"]" {
			t.Fatalf("trail = %v", got)
		}
		verifies(t, s, true, 0)
	}},
}
