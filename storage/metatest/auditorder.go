package metatest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
)

// The trail's order is the commits' order. A write that appends its own
// records (AppendAudit, a pack version put, a lifecycle change, a bundle
// applied, a configuration change) commits after the events already
// queued for the trail, so its records come after theirs.

// directAppends are the writes that append their records themselves,
// each recording one record whose action is its name, in its turn i.
var directAppends = []struct {
	name string
	fn   func(ctx context.Context, s storage.Store, i int) error
}{
	{"direct.append", func(ctx context.Context, s storage.Store, i int) error {
		return s.AppendAudit(ctx, &storage.AuditRecord{Action: "direct.append", Target: "x"})
	}},
	{"direct.config", func(ctx context.Context, s storage.Store, i int) error {
		rec := &storage.AuditRecord{Action: "direct.config", Target: "x", Details: map[string]string{"i": fmt.Sprint(i)}}
		if appended, err := s.AppendAuditIfChanged(ctx, rec); err != nil || !appended {
			return fmt.Errorf("AppendAuditIfChanged of new details: appended %v, %v", appended, err)
		}
		return nil
	}},
	{"direct.publish", func(ctx context.Context, s storage.Store, i int) error {
		_, err := s.PutPackVersion(ctx, packVersion("p", fmt.Sprintf("1.0.%d", i), fmt.Sprint(i)),
			&storage.AuditRecord{Action: "direct.publish", Target: "p"})
		return err
	}},
	{"direct.lifecycle", func(ctx context.Context, s storage.Store, i int) error {
		v := fmt.Sprintf("1.0.%d", i)
		if _, err := s.PutPackVersion(ctx, packVersion("l", v, fmt.Sprint(i)), nil); err != nil {
			return err
		}
		return s.ChangePackStatus(ctx, []storage.PackStatusChange{{Name: "l", Version: v, From: storage.PackActive,
			To: storage.PackDeprecated}}, []*storage.AuditRecord{{Action: "direct.lifecycle", Target: "l"}})
	}},
	{"direct.bundle", func(ctx context.Context, s storage.Store, i int) error {
		id := fmt.Sprintf("i%d", i)
		return s.ApplyBundle(ctx, applied(id, "c"+id, 1, "", id), testImport(id, time.Now().UTC()),
			&storage.AuditRecord{Action: "direct.bundle", Target: "c"})
	}},
}

// auditActions is the trail's actions, oldest first.
func auditActions(t *testing.T, s storage.Store) []string {
	t.Helper()
	var out []string
	for _, r := range trail(t, s) {
		action, _, _ := strings.Cut(r, " ")
		out = append(out, action)
	}
	return out
}

var auditOrderCases = []testCase{
	{"DirectAppendsFollowQueuedEvents", func(t *testing.T, s storage.Store) {
		// Not inline: every event of a write waits in the queue, as one
		// does on PostgreSQL when its write found the head taken.
		var want []string
		for i, d := range directAppends {
			ok(t, s.LinkBlob(ctx(t), "r", dg(d.name), 1, ev("blob.push", "r", d.name)), "LinkBlob")
			ok(t, d.fn(ctx(t), s, i), "%s", d.name)
			want = append(want, "blob.push", d.name)
			if got := auditActions(t, s); !slices.Equal(got, want) {
				t.Fatalf("trail after %s = %v, want %v (the push queued before it, then its record)", d.name, got, want)
			}
			if _, names := pending(t, s, storage.AuditConsumer); len(names) != 0 {
				t.Fatalf("still queued for the trail after %s: %v", d.name, names)
			}
		}
		verifies(t, s, true, 0)
	}},
	{"DirectAppendsRecordALongQueueInPages", func(t *testing.T, s storage.Store) {
		// After an outage the queue may hold many thousands of events: a
		// direct append records them in transactions of a page each, not
		// all in its own (its latency, its locks, its statement timeout).
		obs, observable := s.(storage.OpsObservable)
		if !observable {
			t.Skipf("%T does not report its commits", s)
		}
		db := rawDB(t, s)
		// What each commit recorded, by the head's move: the commits are
		// this goroutine's, each read at once after it.
		var (
			mu      sync.Mutex
			watch   bool
			last    int64
			largest int64
		)
		obs.ObserveOps(func(op string, _ time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			if !watch || op != "commit" || err != nil {
				return
			}
			var seq int64
			if err := db.QueryRowContext(ctx(t), `SELECT seq FROM audit_head WHERE id = 1`).Scan(&seq); err != nil {
				t.Errorf("head after a commit: %v", err)
			}
			largest = max(largest, seq-last)
			last = seq
		})
		// A quarter of the queue at most per transaction (sqlmeta's page
		// is 256 events).
		const queued, most = 1024, 256
		var want []string
		for i, d := range directAppends {
			evs := make([]storage.Event, queued)
			for j := range evs {
				evs[j] = ev("blob.push", "r", fmt.Sprintf("%s-%d", d.name, j))
			}
			ok(t, s.LinkBlob(ctx(t), "r", dg(d.name), 1, evs...), "LinkBlob")
			head, err := s.AuditHead(ctx(t))
			ok(t, err, "AuditHead")
			mu.Lock()
			watch, last, largest = true, head.ID, 0
			mu.Unlock()
			ok(t, d.fn(ctx(t), s, i), "%s", d.name)
			mu.Lock()
			watch = false
			mu.Unlock()
			if largest > most {
				t.Fatalf("%s after %d queued events: a transaction recorded %d, want %d at most", d.name, queued, largest, most)
			}
			for range queued {
				want = append(want, "blob.push")
			}
			want = append(want, d.name)
			if got := auditActions(t, s); !slices.Equal(got, want) {
				t.Fatalf("trail after %s: %d records, want the %d pushes queued before it, then its record", d.name, len(got), queued)
			}
			if _, names := pending(t, s, storage.AuditConsumer); len(names) != 0 {
				t.Fatalf("%d still queued for the trail after %s", len(names), d.name)
			}
		}
		verifies(t, s, true, 0)
	}},
	{"AuditAppendIfUnchangedIsTwoStatements", func(t *testing.T, s storage.Store) {
		// The queue's statement takes the head's lock (or SQLite's
		// transaction holds the write lock): the read of the last
		// record follows it, with no lock statement of its own.
		obs, observable := s.(storage.OpsObservable)
		if !observable {
			t.Skipf("%T does not report its statements", s)
		}
		rec := func() *storage.AuditRecord {
			return &storage.AuditRecord{Actor: "system", Action: "config.change", Target: "packs.policy",
				Details: map[string]string{"x": "1"}}
		}
		appended, err := s.AppendAuditIfChanged(ctx(t), rec())
		if err != nil || !appended {
			t.Fatalf("AppendAuditIfChanged of new details: appended %v, %v", appended, err)
		}
		var stmts atomic.Int64
		obs.ObserveOps(func(op string, _ time.Duration, _ error) {
			if op == "query" || op == "exec" {
				stmts.Add(1)
			}
		})
		appended, err = s.AppendAuditIfChanged(ctx(t), rec())
		if err != nil || appended {
			t.Fatalf("AppendAuditIfChanged of the same details: appended %v, %v", appended, err)
		}
		if n := stmts.Load(); n != 2 {
			t.Fatalf("AppendAuditIfChanged of unchanged details ran %d statements, want 2 (the queue with the head, the read)", n)
		}
	}},
	{"DirectAppendsAmongQueuingWritesAndDrains", func(t *testing.T, s storage.Store) {
		// Writes that queue, drains and direct appends at once: they take
		// the queue's rows and the head in one order, so none waits for
		// another in a cycle, and every change is recorded once.
		inline(t, s)
		const rounds = 8
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range rounds {
					body := fmt.Sprintf("w%d-%d", w, i)
					if err := s.LinkBlob(ctx(t), "r", dg(body), 1, ev("blob.push", "r", body)); err != nil {
						t.Errorf("LinkBlob: %v", err)
					}
				}
			})
		}
		for j, d := range directAppends {
			wg.Go(func() {
				for i := range rounds {
					if err := d.fn(ctx(t), s, j*rounds+i); err != nil {
						t.Errorf("%s: %v", d.name, err)
					}
				}
			})
		}
		wg.Go(func() {
			for range rounds {
				if _, err := s.AuditEvents(ctx(t), 2); err != nil {
					t.Errorf("AuditEvents: %v", err)
				}
			}
		})
		wg.Wait()
		if t.Failed() {
			return
		}
		for {
			n, err := s.AuditEvents(ctx(t), 0)
			ok(t, err, "AuditEvents")
			if n == 0 {
				break
			}
		}
		counts := map[string]int{}
		for _, a := range auditActions(t, s) {
			counts[a]++
		}
		want := map[string]int{"blob.push": 4 * rounds}
		for _, d := range directAppends {
			want[d.name] = rounds
		}
		if fmt.Sprint(counts) != fmt.Sprint(want) {
			t.Fatalf("records by action = %v, want %v", counts, want)
		}
		verifies(t, s, true, 0)
	}},
}
