package postgres_test

import (
	"context"
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
			done := make(chan error, 1)
			go func() { done <- c.append(ctx, s) }()
			for blocked() == 0 {
				select {
				case err := <-done:
					t.Fatalf("the append returned (%v) while a drain held the events queued before it", err)
				default:
					time.Sleep(time.Millisecond)
				}
			}
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
			recs, err := s.ScanAudit(ctx, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Action)
			}
			if len(got) != 2 || got[0] != "blob.push" || got[1] != "direct" {
				t.Fatalf("trail = %v, want the queued push, then the direct record", got)
			}
			if q := auditQueue(t, s); len(q) != 0 {
				t.Fatalf("still queued: %v", q)
			}
			verifiedChain(t, s, 2)
		})
	}
}
