package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// A write that appends its own records takes the events queued for the
// trail first, as a drain takes them: their rows, then the head. While a
// drain (here a session) holds those rows, the write waits for them
// without the head, so the drain can take the head: neither waits for
// the other. Before, the write appended at once, ahead of the events;
// AppendAuditIfChanged even took the head first, which a write that
// then waited for the rows would have held against the drain.
func TestDirectAppendWaitsForADrainsRowsWithoutTheHead(t *testing.T) {
	for _, c := range []struct {
		name   string
		append func(ctx context.Context, s *sqlmeta.Store) error
	}{
		{"AppendAudit", func(ctx context.Context, s *sqlmeta.Store) error {
			return s.AppendAudit(ctx, &storage.AuditRecord{Action: "direct", Target: "x"})
		}},
		{"AppendAuditIfChanged", func(ctx context.Context, s *sqlmeta.Store) error {
			_, err := s.AppendAuditIfChanged(ctx, &storage.AuditRecord{Action: "direct", Target: "x"})
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t, freshSchema(t))
			t.Cleanup(func() { s.Close() }) // after the holder's (cleanups run last first)
			ctx := t.Context()
			// Not inline: the event waits for the trail.
			if err := s.LinkBlob(ctx, "r", pgDigest("a"), 1, pgEvent("blob.push", "a")); err != nil {
				t.Fatal(err)
			}
			drain, blocked := holdTx(t, s, `DELETE FROM event_queue WHERE consumer = 'audit'`)
			done := waitingBehind(t, blocked, func() error { return c.append(ctx, s) })
			// The drain goes for the head: free, or this would deadlock.
			if _, err := drain.ExecContext(ctx, `SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE NOWAIT`); err != nil {
				t.Fatalf("the waiting append holds the chain head: %v", err)
			}
			// The drain fails: the event stays queued, for the append.
			if err := drain.Rollback(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := trailActions(t, s); len(got) != 2 || got[0] != "blob.push" || got[1] != "direct" {
				t.Fatalf("trail = %v, want the queued push, then the direct record", got)
			}
			if q := auditQueue(t, s); len(q) != 0 {
				t.Fatalf("still queued: %v", q)
			}
			verifiedChain(t, s, 2)
		})
	}
}

// A direct append takes a page of the queue at most, and asks for the
// rest to be drained first when its statement saw more than a page,
// counting the rows a drain holds: those it skips once the drain has
// them, which are not the last of the queue. Counted by what it took,
// the append below would take one event of the 44 past the drain's
// page, append after it, and leave 43 queued that committed before it.
func TestDirectAppendCountsTheQueueADrainHolds(t *testing.T) {
	s := open(t, freshSchema(t))
	t.Cleanup(func() { s.Close() }) // after the holder's (cleanups run last first)
	ctx := t.Context()
	const queued, page = 300, 256 // page: sqlmeta's auditBatch
	evs := make([]storage.Event, queued)
	for i := range evs {
		evs[i] = pgEvent("blob.push", fmt.Sprintf("e%03d", i))
	}
	if err := s.LinkBlob(ctx, "r", pgDigest("a"), 1, evs...); err != nil {
		t.Fatal(err)
	}
	// A drain (here a session) has taken the oldest page.
	drain, blocked := holdTx(t, s, fmt.Sprintf(`DELETE FROM event_queue WHERE consumer = 'audit'
		AND id IN (SELECT id FROM event_queue WHERE consumer = 'audit' ORDER BY id LIMIT %d)`, page))
	done := waitingBehind(t, blocked, func() error {
		return s.AppendAudit(ctx, &storage.AuditRecord{Action: "direct", Target: "x"})
	})
	// The drain commits (its records do not matter here).
	if err := drain.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := trailActions(t, s); len(got) != queued-page+1 || got[len(got)-1] != "direct" {
		t.Fatalf("trail of %d records ending in %q, want the %d pushes the drain left, then the direct record",
			len(got), got[len(got)-1], queued-page)
	}
	if q := auditQueue(t, s); len(q) != 0 {
		t.Fatalf("still queued: %v", q)
	}
	verifiedChain(t, s, queued-page+1)
}

// waitingBehind runs fn, an append, in a goroutine until it waits
// behind the holder whose waiters blocked counts; its error comes on
// the channel.
func waitingBehind(t *testing.T, blocked func() int, fn func() error) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	for blocked() == 0 {
		select {
		case err := <-done:
			t.Fatalf("the append returned (%v) while a drain held events queued before it", err)
		default:
			time.Sleep(time.Millisecond)
		}
	}
	return done
}

// trailActions is the actions of the trail, oldest first.
func trailActions(t *testing.T, s *sqlmeta.Store) []string {
	t.Helper()
	recs, err := s.ScanAudit(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Action)
	}
	return out
}
