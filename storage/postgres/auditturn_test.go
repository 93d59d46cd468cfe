package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// A write appends its audit records inline only when no other transaction
// of its store is under way: otherwise it would wait for the chain head's
// lock, which every inline writer holds until its commit, and writers
// would commit one after another. It queues its events for the trail
// instead, in its own transaction, and commits without the head.

func pgEvent(action, target string) storage.Event {
	return storage.Event{Actor: "t", Action: action, Target: target}
}

func pgDigest(s string) digest.Digest { return digest.FromBytes(digest.SHA256, []byte(s)) }

// holdLock runs stmt in a transaction of its own, kept open until the
// test ends, and returns a function counting the sessions that wait for
// it, directly or in line behind another waiter of the same row.
func holdLock(t *testing.T, s *sqlmeta.Store, stmt string) (blocked func() int, release func()) {
	t.Helper()
	holder, blocked := holdTx(t, s, stmt)
	release = func() {
		if err := holder.Rollback(); err != nil && err != sql.ErrTxDone {
			t.Fatal(err)
		}
	}
	return blocked, release
}

// holdTx is holdLock with the holder's transaction, for a test that
// commits it.
func holdTx(t *testing.T, s *sqlmeta.Store, stmt string) (holder *sql.Tx, blocked func() int) {
	t.Helper()
	ctx := t.Context()
	holder, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Rollback() })
	var pid int
	if err := holder.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, stmt); err != nil {
		t.Fatal(err)
	}
	blocked = func() int {
		var n int
		err := s.ReadDB().QueryRowContext(ctx, `WITH RECURSIVE b (pid) AS (SELECT $1::int UNION
			SELECT a.pid FROM pg_stat_activity a JOIN b ON b.pid = ANY(pg_blocking_pids(a.pid)))
			SELECT count(*) - 1 FROM b`, pid).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return holder, blocked
}

// waitFor polls cond, a condition on the database, until it holds.
func waitFor(cond func() bool) {
	for !cond() {
		time.Sleep(time.Millisecond)
	}
}

// writeWithoutWaiting runs write and fails the test if, before it
// returns, more than already sessions wait behind the lock (the chain
// head's) that blocked counts.
func writeWithoutWaiting(t *testing.T, blocked func() int, already int, write func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- write() }()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			return
		default:
			if blocked() > already {
				t.Fatal("the write waits for the chain head")
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func auditQueue(t *testing.T, s *sqlmeta.Store) []string {
	t.Helper()
	evs, err := s.PendingEvents(t.Context(), storage.AuditConsumer, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Target)
	}
	return out
}

func verifiedChain(t *testing.T, s *sqlmeta.Store, records int64) {
	t.Helper()
	v, err := storage.VerifyAudit(t.Context(), s)
	if err != nil || !v.OK || v.Head.ID != records {
		t.Fatalf("VerifyAudit = %+v, %v; want a verified chain of %d records", v, err, records)
	}
}

// Behind a drain of its own store, kept at the head by a session that
// holds the head's lock. Before, the write waited for the head's lock up
// to lock_timeout, a second.
func TestWriteQueuesWhileItsStoreDrainsAtTheHead(t *testing.T) {
	s := open(t, freshSchema(t))
	t.Cleanup(func() { s.Close() }) // after the lock holders' (cleanups run last first)
	ctx := t.Context()
	// Queued before inline auditing, so that the drain has work and goes
	// for the head.
	if err := s.LinkBlob(ctx, "r", pgDigest("a"), 1, pgEvent("blob.push", "a")); err != nil {
		t.Fatal(err)
	}
	s.AuditInline()
	blocked, release := holdLock(t, s, `UPDATE audit_head SET seq = seq WHERE id = 1`)
	type result struct {
		n   int
		err error
	}
	drained := make(chan result, 1)
	go func() {
		n, err := s.AuditEvents(ctx, 0)
		drained <- result{n, err}
	}()
	waitFor(func() bool { return blocked() == 1 }) // the drain waits for the head

	writeWithoutWaiting(t, blocked, 1, func() error {
		return s.LinkBlob(ctx, "r", pgDigest("b"), 1, pgEvent("blob.push", "b"))
	})
	if q := auditQueue(t, s); len(q) != 2 || q[1] != "b" {
		t.Fatalf("queued for the trail: %v; want the first push and b's", q)
	}
	release()
	// The drain took what was queued before it went for the head.
	if r := <-drained; r.err != nil || r.n != 1 {
		t.Fatalf("the drain that waited = %d, %v; want the first push recorded", r.n, r.err)
	}
	if n, err := s.AuditEvents(ctx, 0); err != nil || n != 1 {
		t.Fatalf("the next drain = %d, %v; want b's push recorded", n, err)
	}
	verifiedChain(t, s, 2)
}

// Alongside another write of its store that is under way (here waiting
// for a tag's row, which a session holds). Before, it appended inline.
func TestWriteQueuesWhileAnotherWriteIsUnderWay(t *testing.T) {
	s := open(t, freshSchema(t))
	t.Cleanup(func() { s.Close() }) // after the lock holders' (cleanups run last first)
	ctx := t.Context()
	s.AuditInline()
	if err := s.LinkBlob(ctx, "r", pgDigest("cfg"), 1); err != nil {
		t.Fatal(err)
	}
	put := func(body string) error {
		m := &storage.Manifest{Repo: "r", Digest: pgDigest(body), MediaType: "application/vnd.oci.image.manifest.v1+json",
			Size: int64(len(body)), Payload: []byte(body), Refs: []digest.Digest{pgDigest("cfg")}}
		return s.PutManifest(ctx, m, []string{"v"}, storage.PutManifestOptions{Present: m.Refs,
			Events: []storage.Event{pgEvent("manifest.push", body), pgEvent("tag.move", "r:v")}})
	}
	// Alone, a write appends inline.
	if err := put("m0"); err != nil {
		t.Fatal(err)
	}
	if q := auditQueue(t, s); len(q) != 0 {
		t.Fatalf("a lone write queued for the trail: %v", q)
	}
	verifiedChain(t, s, 2)

	blocked, release := holdLock(t, s, `SELECT 1 FROM tags WHERE name = 'v' FOR UPDATE`)
	moved := make(chan error, 1)
	go func() { moved <- put("m1") }()
	waitFor(func() bool { return blocked() == 1 }) // the put waits for its tag

	writeWithoutWaiting(t, blocked, 1, func() error {
		return s.LinkBlob(ctx, "r", pgDigest("b"), 1, pgEvent("blob.push", "b"))
	})
	if q := auditQueue(t, s); len(q) != 1 || q[0] != "b" {
		t.Fatalf("queued for the trail: %v; want b's push", q)
	}
	release()
	if err := <-moved; err != nil {
		t.Fatal(err)
	}
	// m1's put, alone again by its end, queued behind b's push, which
	// committed before it (drainbehind_test.go's
	// TestLoneWriteIsRecordedAfterWhatIsQueued).
	if n, err := s.AuditEvents(context.WithoutCancel(ctx), 0); err != nil || n != 3 {
		t.Fatalf("AuditEvents = %d, %v; want b's push and m1's put recorded", n, err)
	}
	verifiedChain(t, s, 5)
}

// A lone inline-audited blob link with its event is two round trips,
// two pipelines (linkpipe.go): BEGIN, the link with its queue rows, a
// savepoint with the head's lock_timeout, the head bumped; then the
// records with the head's hash, COMMIT. It was six, one per statement.
// Counted on the wire: ObserveOps sees one statement per pipeline. A
// change to a push's round trips shows here.
func TestInlineLinkRoundTrips(t *testing.T) {
	s, trips := inlineTrips(t)
	link := func(blob string) int64 {
		t.Helper()
		return trips.during(t, func() error {
			return s.LinkBlob(t.Context(), "r", pgDigest(blob), 1, pgEvent("blob.push", blob))
		})
	}
	link("first")  // the repository's id remembered
	link("second") // the pipelines' statements prepared
	if n := link("b"); n != 2 {
		t.Fatalf("round trips of an inline audited link: %d, want 2", n)
	}
	verifiedChain(t, s, 3)
}

// inlineTrips opens an inline-auditing store in a fresh schema through a
// tripCounter.
func inlineTrips(t *testing.T) (*sqlmeta.Store, *tripCounter) {
	t.Helper()
	dsn, trips := tripDSN(t, freshSchema(t))
	s := open(t, dsn)
	t.Cleanup(func() { s.Close() })
	s.AuditInline()
	return s, trips
}

// during runs fn, which must succeed, and returns its round trips.
func (c *tripCounter) during(t *testing.T, fn func() error) int64 {
	t.Helper()
	before := c.trips.Load()
	if err := fn(); err != nil {
		t.Fatal(err)
	}
	return c.trips.Load() - before
}

// A push's confirmed link reads the tombstones in the round trip of its
// COMMIT, after it (linkpipe.go): two round trips with its inline
// records, and the answer holds (Serial). Before, the link was six and
// the writer read the tombstones in a seventh, after it.
func TestConfirmedLinkRoundTrips(t *testing.T) {
	s, trips := inlineTrips(t)
	ctx := t.Context()
	link := func(blob string, within time.Duration) (c storage.LinkCheck, n int64) {
		t.Helper()
		n = trips.during(t, func() (err error) {
			c, err = s.LinkBlobConfirmed(ctx, "r", pgDigest(blob), 1, within, pgEvent("blob.push", blob))
			return err
		})
		return c, n
	}
	link("first", time.Minute)  // the repository's id remembered
	link("second", time.Minute) // the pipelines' statements prepared
	link("third", 0)
	if _, err := s.BeginBlobDelete(ctx, []digest.Digest{pgDigest("gone")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		blob   string
		within time.Duration
		want   storage.LinkCheck
	}{
		{"b", time.Minute, storage.LinkCheck{Serial: true}},
		{"gone", time.Minute, storage.LinkCheck{Serial: true, Deleting: true, Begun: true}},
		{"c", 0, storage.LinkCheck{Serial: true, Begun: true}},
	} {
		if c, n := link(tc.blob, tc.within); c != tc.want || n != 2 {
			t.Fatalf("link %s: %+v in %d round trips, want %+v in 2", tc.blob, c, n, tc.want)
		}
	}
	verifiedChain(t, s, 6)
}

// Pipelined links (linkpipe.go) give their connection back before their
// listeners run: the audit drain they wake needs one. Before, 16
// concurrent pushes on a pool of 2 held both while their drains waited
// for one, for good.
func TestPipelinedLinksLeaveTheDrainAConnection(t *testing.T) {
	u, err := url.Parse(freshSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "2")
	u.RawQuery = q.Encode()
	s := open(t, u.String())
	t.Cleanup(func() { s.Close() })
	s.AuditInline()
	s.OnEvents(func(ctx context.Context) { s.AuditEvents(ctx, 0) })
	// A deadlock hangs the pushers, and go test's -timeout reports it
	// (the drains wait under contexts that are never cancelled).
	ctx := t.Context()
	if err := s.LinkBlob(ctx, "r", pgDigest("first"), 1); err != nil { // the repository's id remembered
		t.Fatal(err)
	}
	const pushers, each = 16, 4
	errs := make(chan error, pushers)
	for p := range pushers {
		go func() {
			var err error
			for i := range each {
				blob := fmt.Sprintf("%d-%d", p, i)
				if err = s.LinkBlob(ctx, "r", pgDigest(blob), 1, pgEvent("blob.push", blob)); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range pushers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for { // what the listeners' drains left
		n, err := s.AuditEvents(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	verifiedChain(t, s, pushers*each)
}

// A pipelined link whose head stays locked past lock_timeout (here by a
// LOCK TABLE, an operator's) rolls back to its savepoint and queues its
// event for the trail, as the transaction does: a round trip for the
// rollback, then the queue rows with the COMMIT.
func TestPipelinedLinkQueuesWhileTheHeadStaysLocked(t *testing.T) {
	dsn, trips := tripDSN(t, freshSchema(t))
	s := open(t, dsn)
	t.Cleanup(func() { s.Close() })
	s.AuditInline()
	// The lock's holder has a pool of its own: the link gets the
	// connection its statements were prepared on.
	other := open(t, dsn)
	t.Cleanup(func() { other.Close() })
	ctx := t.Context()
	for _, blob := range []string{"first", "second"} { // the id remembered, the statements prepared
		trips.during(t, func() error { return s.LinkBlob(ctx, "r", pgDigest(blob), 1, pgEvent("blob.push", blob)) })
	}
	// Twice: the first prepares the statements of this path.
	for i, blob := range []string{"b", "c"} {
		_, release := holdLock(t, other, `LOCK TABLE audit_head IN EXCLUSIVE MODE`)
		n := trips.during(t, func() error { return s.LinkBlob(ctx, "r", pgDigest(blob), 1, pgEvent("blob.push", blob)) })
		// Pipelined: fewer than the transaction's seven (BEGIN, link,
		// savepoint, bump, rollback to it, queue, COMMIT). Not pinned
		// further: pgx re-prepares what a failed batch invalidated.
		if q := auditQueue(t, s); len(q) != 1 || q[0] != blob || (i == 1 && n >= 7) {
			t.Fatalf("queued for the trail: %v in %d round trips; want %s's push, pipelined", q, n, blob)
		}
		release()
		if n, err := s.AuditEvents(ctx, 0); err != nil || n != 1 {
			t.Fatalf("AuditEvents = %d, %v; want %s's push recorded", n, err, blob)
		}
	}
	verifiedChain(t, s, 4)
}
