package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// watch makes s record its events as audit.Recorder.Watch does: inline,
// and what a commit queued for the trail drained by its listener.
func watch(t *testing.T, s *sqlmeta.Store) {
	s.AuditInline()
	s.OnEvents(func(ctx context.Context) {
		for {
			n, err := s.AuditEvents(ctx, 256)
			if err != nil {
				t.Errorf("AuditEvents: %v", err)
			}
			if err != nil || n < 256 {
				return
			}
		}
	})
}

// queuedLink links blob with its event while other holds the chain head,
// so the link queues its event for the trail (after the head's
// lock_timeout), and returns once the link answered: without waiting for
// the drain, which waits at the head. Before drains ran behind the
// answer, the link waited there too (the test hung).
func queuedLink(t *testing.T, s, other *sqlmeta.Store, blob string) (blocked func() int, holder func() int, release func()) {
	t.Helper()
	h, blocked := holdTx(t, other, `UPDATE audit_head SET seq = seq WHERE id = 1`)
	if err := s.LinkBlob(t.Context(), "r", pgDigest(blob), 1, pgEvent("blob.push", blob)); err != nil {
		t.Fatal(err)
	}
	if q := auditQueue(t, other); !slices.Equal(q, []string{blob}) {
		t.Fatalf("queued for the trail: %v; want %s's push", q, blob)
	}
	holder = func() int {
		var pid int
		if err := h.QueryRowContext(t.Context(), `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return pid
	}
	return blocked, holder, func() {
		if err := h.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
}

// A read of the trail on any replica, after a write answered and before
// the drain behind it recorded its events, sees the write's record: the
// read drains the shared queue first, here waiting (on the events' row
// locks or the head) for the drain that the held head keeps. Without
// that, the read answered at once without the record.
func TestTrailReadSeesTheRecordOfAnAnsweredWrite(t *testing.T) {
	dsn := freshSchema(t)
	s, replica, other := open(t, dsn), open(t, dsn), open(t, dsn)
	t.Cleanup(func() { s.Close(); replica.Close(); other.Close() }) // after the holder's
	watch(t, s)
	watch(t, replica)
	blocked, _, release := queuedLink(t, s, other, "b")
	type listed struct {
		recs []storage.AuditRecord
		err  error
	}
	got := make(chan listed, 1)
	go func() {
		recs, err := replica.ListAudit(context.WithoutCancel(t.Context()), storage.AuditQuery{})
		got <- listed{recs, err}
	}()
	for blocked() < 2 { // the drain behind the link, and the read's
		select {
		case l := <-got:
			t.Fatalf("the read answered while the link's record was queued: %v, %v", l.recs, l.err)
		default:
			time.Sleep(time.Millisecond)
		}
	}
	release()
	l := <-got
	if l.err != nil || len(l.recs) != 1 || l.recs[0].Action != "blob.push" || l.recs[0].Target != "b" {
		t.Fatalf("ListAudit on the replica = %+v, %v; want b's push", l.recs, l.err)
	}
	verifiedChain(t, s, 1)
}

// killDrain ends the session of the drain that waits for the session
// holder (its pid) at the head, as a crash or a lost connection would.
func killDrain(t *testing.T, s *sqlmeta.Store, holder int) {
	t.Helper()
	var killed int
	if err := s.ReadDB().QueryRowContext(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE $1::int = ANY(pg_blocking_pids(pid))`, holder).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d sessions, %v; want the drain's", killed, err)
	}
}

// A drain behind an answered write that dies (its session killed here, a
// crashed replica alike) loses nothing: the events stay queued, and the
// next start's Flush records them.
func TestQueuedRecordsOutliveTheDrainBehind(t *testing.T) {
	dsn := freshSchema(t)
	s, other := open(t, dsn), open(t, dsn)
	t.Cleanup(func() { s.Close(); other.Close() }) // after the holder's
	watch(t, s)
	blocked, holder, release := queuedLink(t, s, other, "b")
	waitFor(func() bool { return blocked() == 1 }) // the drain behind waits at the head
	killDrain(t, other, holder())
	release()
	if err := s.Close(); err != nil { // waits for the drainer, which failed
		t.Fatal(err)
	}
	if q := auditQueue(t, other); !slices.Equal(q, []string{"b"}) {
		t.Fatalf("queued for the trail after the drain died: %v; want b's push", q)
	}
	restarted := open(t, dsn)
	t.Cleanup(func() { restarted.Close() })
	if n, err := restarted.AuditEvents(t.Context(), 0); err != nil || n != 1 { // audit.Recorder.Flush at start
		t.Fatalf("AuditEvents at start = %d, %v; want b's push recorded", n, err)
	}
	verifiedChain(t, restarted, 1)
}

// Close does not wait for a drain behind that another session keeps
// waiting at the head (a stuck transaction, a replica's long drain): a
// server's shutdown must not hang on it. It cancels the drain, whose
// events stay queued for the next. Before, Close waited for the drain,
// which waits at the head without a lock_timeout (the test hung).
func TestCloseCancelsADrainBehindKeptAtTheHead(t *testing.T) {
	dsn := freshSchema(t)
	s, other := open(t, dsn), open(t, dsn)
	t.Cleanup(func() { s.Close(); other.Close() }) // after the holder's
	watch(t, s)
	blocked, _, release := queuedLink(t, s, other, "b")
	waitFor(func() bool { return blocked() == 1 }) // the drain behind waits at the head
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	release()
	if q := auditQueue(t, other); !slices.Equal(q, []string{"b"}) {
		t.Fatalf("queued for the trail after Close: %v; want b's push", q)
	}
	if n, err := other.AuditEvents(t.Context(), 0); err != nil || n != 1 {
		t.Fatalf("AuditEvents after Close = %d, %v; want b's push recorded", n, err)
	}
	verifiedChain(t, other, 1)
}

// A drain behind that fails is reported: counted by the store's observer
// (the metrics' storage_operations_total), and to the listener of the
// next write that hands the drainer work (audit.Recorder logs it), as a
// drain on the listener's goroutine was before it ran behind. Before, its
// error was dropped (the test hung, waiting for the observer's report).
func TestAFailedDrainBehindIsReported(t *testing.T) {
	dsn := freshSchema(t)
	s, other := open(t, dsn), open(t, dsn)
	t.Cleanup(func() { s.Close(); other.Close() }) // after the holder's
	drains := make(chan error, 4)
	s.ObserveOps(func(op string, _ time.Duration, err error) {
		if op == "audit_drain" {
			drains <- err
		}
	})
	reported := make(chan error, 4)
	s.AuditInline()
	s.OnEvents(func(ctx context.Context) { // audit.Recorder's listener, minus its log
		if _, err := s.AuditEvents(ctx, 256); err != nil {
			reported <- err
		}
	})
	blocked, holder, release := queuedLink(t, s, other, "b")
	waitFor(func() bool { return blocked() == 1 }) // the drain behind waits at the head
	killDrain(t, other, holder())
	if err := <-drains; err == nil {
		t.Fatal("the killed drain reported no failure to the observer")
	}
	if len(reported) != 0 {
		t.Fatalf("reported before a write handed the drainer work: %v", <-reported)
	}
	// The head still held: c queues too, and its hand-off hears of b's drain.
	if err := s.LinkBlob(t.Context(), "r", pgDigest("c"), 1, pgEvent("blob.push", "c")); err != nil {
		t.Fatal(err)
	}
	if len(reported) != 1 {
		t.Fatalf("the next hand-off reported %d failures; want the killed drain's", len(reported))
	}
	release()
	if err := <-drains; err != nil { // the drainer woken by c's hand-off
		t.Fatalf("the drain after the holder left: %v", err)
	}
	verifiedChain(t, s, 2)
}
