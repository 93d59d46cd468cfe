package postgres_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
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

// drainAtTheHead opens two stores on a fresh schema, s recording its
// events as audit.Recorder.Watch does, and leaves a drain behind s's
// link of b waiting at the head, which other holds (queuedLink).
func drainAtTheHead(t *testing.T) (dsn string, s, other *sqlmeta.Store, holder func() int, release func()) {
	t.Helper()
	dsn = freshSchema(t)
	s, other = open(t, dsn), open(t, dsn)
	t.Cleanup(func() { s.Close(); other.Close() }) // after the holder's
	watch(t, s)
	blocked, holder, release := queuedLink(t, s, other, "b")
	waitFor(func() bool { return blocked() == 1 }) // the drain behind waits at the head
	return dsn, s, other, holder, release
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
	dsn, s, other, holder, release := drainAtTheHead(t)
	killDrain(t, other, holder())
	release()
	if err := s.Close(); err != nil { // waits for the drainer, which failed
		t.Fatal(err)
	}
	restarted := open(t, dsn)
	t.Cleanup(func() { restarted.Close() })
	recordedNext(t, restarted, "the drain died") // audit.Recorder.Flush at start
}

// recordedNext checks that b's push is still queued for the trail after
// what happened, and that the next drain, by s, records it.
func recordedNext(t *testing.T, s *sqlmeta.Store, happened string) {
	t.Helper()
	if q := auditQueue(t, s); !slices.Equal(q, []string{"b"}) {
		t.Fatalf("queued for the trail after %s: %v; want b's push", happened, q)
	}
	if n, err := s.AuditEvents(t.Context(), 0); err != nil || n != 1 {
		t.Fatalf("the next drain = %d, %v; want b's push recorded", n, err)
	}
	verifiedChain(t, s, 1)
}

// Close does not wait for a drain behind that another session keeps
// waiting at the head (a stuck transaction, a replica's long drain): a
// server's shutdown must not hang on it. It cancels the drain, whose
// events stay queued for the next. Before, Close waited for the drain,
// which waits at the head without a lock_timeout (the test hung).
func TestCloseCancelsADrainBehindKeptAtTheHead(t *testing.T) {
	_, s, other, _, release := drainAtTheHead(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	release()
	recordedNext(t, other, "Close")
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

// A lone write appends its records inline only when nothing waits in the
// queue for the trail: what another replica queued and committed before
// the write began (a replica not recording inline here; a busy or a
// crashed one alike) is recorded ahead of it, so the trail keeps the
// order of the commits. Before, the lone write appended ahead of it, a
// pipelined link and a put's transaction alike.
func TestLoneWriteIsRecordedAfterWhatIsQueued(t *testing.T) {
	dsn := freshSchema(t)
	queuer := open(t, dsn)
	t.Cleanup(func() { queuer.Close() })
	ctx := t.Context()
	var s *sqlmeta.Store
	for _, w := range []struct {
		name  string
		write func() error
	}{
		{"link", func() error { return s.LinkBlob(ctx, "r", pgDigest("b"), 1, pgEvent("blob.push", "link")) }},
		{"put", func() error {
			m := &storage.Manifest{Repo: "r", Digest: pgDigest("m"), MediaType: "application/vnd.oci.image.manifest.v1+json",
				Size: 1, Payload: []byte("m"), Refs: []digest.Digest{pgDigest("cfg")}}
			return s.PutManifest(ctx, m, nil, storage.PutManifestOptions{Present: m.Refs,
				Events: []storage.Event{pgEvent("manifest.push", "put")}})
		}},
	} {
		// A store of its own, whose drainer the other's write did not
		// start: its write is alone, and appends inline if it may.
		s = open(t, dsn)
		t.Cleanup(func() { s.Close() })
		watch(t, s)
		if err := s.LinkBlob(ctx, "r", pgDigest("cfg"), 1); err != nil { // the repository's id remembered
			t.Fatal(err)
		}
		if err := queuer.LinkBlob(ctx, "q", pgDigest(w.name), 1, pgEvent("blob.push", "queued before "+w.name)); err != nil {
			t.Fatal(err)
		}
		if err := w.write(); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := s.ListAudit(ctx, storage.AuditQuery{}) // newest first
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range slices.Backward(recs) {
		got = append(got, r.Target)
	}
	if want := []string{"queued before link", "link", "queued before put", "put"}; !slices.Equal(got, want) {
		t.Fatalf("the trail's targets in order: %q; want %q", got, want)
	}
	verifiedChain(t, s, 4)
}

// A read of the trail that finds the chain head held (a stuck
// transaction, another replica's) fails with ErrUnavailable (503,
// Retry-After) once its drain waited headWait, rather than for as
// long as its request lasts: on the store whose drain behind waits there
// (the read's drain is the next one, which it leaves) and on a replica
// (its drain waits on the events' rows). It cannot answer without the
// queued record: once the head is free, a read sees it. Before, the reads
// waited at the head (the test hung).
func TestTrailReadAtAHeldHeadIsUnavailable(t *testing.T) {
	dsn, s, _, _, release := drainAtTheHead(t)
	replica := open(t, dsn)
	t.Cleanup(func() { replica.Close() })
	watch(t, replica)
	for _, st := range []*sqlmeta.Store{s, replica} {
		st.SetHeadWait(20 * time.Millisecond)
		for name, read := range map[string]func(ctx context.Context) error{
			"ListAudit": func(ctx context.Context) error { _, err := st.ListAudit(ctx, storage.AuditQuery{}); return err },
			"ScanAudit": func(ctx context.Context) error { _, err := st.ScanAudit(ctx, 0, 10); return err },
			"AuditHead": func(ctx context.Context) error { _, err := st.AuditHead(ctx); return err },
		} {
			if err := read(t.Context()); !errors.Is(err, storage.ErrUnavailable) {
				t.Fatalf("%s at a held head: %v; want ErrUnavailable", name, err)
			}
			// The 503's body says why, not only "storage unavailable".
			if msg := storage.UnavailableMessage(read(t.Context())); !strings.Contains(msg, "audit trail") {
				t.Fatalf("%s at a held head tells the client %q; want the audit trail named", name, msg)
			}
		}
		st.SetHeadWait(0)
	}
	release()
	for _, st := range []*sqlmeta.Store{replica, s} {
		recs, err := st.ListAudit(t.Context(), storage.AuditQuery{})
		if err != nil || len(recs) != 1 || recs[0].Target != "b" {
			t.Fatalf("ListAudit once the head is free = %+v, %v; want b's push", recs, err)
		}
	}
	verifiedChain(t, s, 1)
}

// A write that appends its own records (AppendAudit, AppendAuditIfChanged:
// a lifecycle change, a bundle applied) and finds the chain head held
// fails with ErrUnavailable once it waited headWait, saying why, rather
// than hold its connection for as long as the head is held (a stuck
// session held every such write: the pool's 16 connections, then all
// writes). Nothing of it is kept; once the head is free it goes through
// after the queued record. Before, the appends waited until their
// context ended ("context deadline exceeded").
func TestDirectAppendAtAHeldHeadIsUnavailable(t *testing.T) {
	_, s, _, _, release := drainAtTheHead(t)
	s.SetHeadWait(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for name, write := range map[string]func() error{
		"AppendAudit": func() error {
			return s.AppendAudit(ctx, &storage.AuditRecord{Actor: "t", Action: "pack.lifecycle", Target: "held"})
		},
		"AppendAuditIfChanged": func() error {
			_, err := s.AppendAuditIfChanged(ctx, &storage.AuditRecord{Actor: "t", Action: "config.change", Target: "held"})
			return err
		},
	} {
		err := write()
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Fatalf("%s at a held head: %v; want ErrUnavailable", name, err)
		}
		if msg := storage.UnavailableMessage(err); !strings.Contains(msg, "audit trail") {
			t.Fatalf("%s at a held head tells the client %q; want the audit trail named", name, msg)
		}
	}
	s.SetHeadWait(0)
	release()
	if err := s.AppendAudit(t.Context(), &storage.AuditRecord{Actor: "t", Action: "pack.lifecycle", Target: "free"}); err != nil {
		t.Fatalf("AppendAudit once the head is free: %v", err)
	}
	recs, err := s.ListAudit(t.Context(), storage.AuditQuery{}) // newest first
	if err != nil || len(recs) != 2 || recs[1].Target != "b" || recs[0].Target != "free" {
		t.Fatalf("the trail = %+v, %v; want b's push, then the append", recs, err)
	}
	verifiedChain(t, s, 2)
}
