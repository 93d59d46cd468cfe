package sqlmeta_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"

	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// pushEvents are a manifest push's events: the push and its tag.
func pushEvents(repo string) []storage.Event {
	return []storage.Event{{Actor: "a", Action: "manifest.push", Target: repo},
		{Actor: "a", Action: "tag.move", Target: repo + ":v"}}
}

// pending lists consumer's queued events as "action target", in id order.
func pending(t *testing.T, s *sqlmeta.Store, consumer string) []string {
	t.Helper()
	evs, err := s.PendingEvents(t.Context(), consumer, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Action+" "+e.Target)
	}
	return out
}

// The events of a batch's writes are queued in the writes' order, the
// order of their inline audit records too, and a write that does not
// defer to the batch (here, one that adds a consumer) sits between them:
// the new consumer gets only the events of the writes after it. Each
// write counts the rows it queued, for its listeners (committed): none
// for one whose only event every consumer skips, so it wakes nobody. A
// write rolled back to its savepoint leaves no row. What any batching of
// the queue's rows (as batchaudit.go does for the records) must keep.
func TestBatchQueuesEventsInTheWritesOrder(t *testing.T) {
	s := openGroup(t)
	s.AuditInline()
	if err := s.AddEventConsumer(t.Context(), "index", "blob.push"); err != nil {
		t.Fatal(err)
	}
	addLate := func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO event_consumers (name) VALUES ('late')`)
		return err
	}
	errs, queued := s.Batch(
		sqlmeta.BatchOp{Events: pushEvents("r0")},
		sqlmeta.BatchOp{Events: []storage.Event{{Actor: "a", Action: "blob.push", Target: "r1"}}},
		sqlmeta.BatchOp{Then: addLate, Plain: true},
		sqlmeta.BatchOp{Events: pushEvents("r3")},
		sqlmeta.BatchOp{Events: pushEvents("r4"), Then: func(context.Context, *sql.Tx) error { return errors.New("no") }},
	)
	for i, err := range errs {
		if (err != nil) != (i == 4) {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if want := []sqlmeta.Queued{{Rows: 2}, {}, {}, {Rows: 4}}; !slices.Equal(queued[:4], want) {
		t.Errorf("queued %+v, want %+v", queued[:4], want)
	}
	if got, want := pending(t, s, "index"), []string{"manifest.push r0", "tag.move r0:v", "manifest.push r3", "tag.move r3:v"}; !slices.Equal(got, want) {
		t.Errorf("queued for the index:\n%v\nwant:\n%v", got, want)
	}
	if got, want := pending(t, s, "late"), []string{"manifest.push r3", "tag.move r3:v"}; !slices.Equal(got, want) {
		t.Errorf("queued for the late consumer:\n%v\nwant:\n%v", got, want)
	}
	recs, err := s.ScanAudit(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, r := range recs {
		trail = append(trail, r.Action+" "+r.Target)
	}
	if want := []string{"manifest.push r0", "tag.move r0:v", "blob.push r1", "manifest.push r3", "tag.move r3:v"}; !slices.Equal(trail, want) {
		t.Errorf("trail:\n%v\nwant:\n%v", trail, want)
	}
}
