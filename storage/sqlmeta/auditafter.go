package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/packreg/packreg/storage"
)

// Appending after the queue. Some writes append their records themselves
// rather than through the outbox: AppendAudit, AppendAuditIfChanged, a
// pack version put or a lifecycle change, a bundle applied. Events that
// wait for the trail (queued by a write that found the head taken,
// auditturn.go, or by an earlier version) committed before such a write,
// and appended straight at the head its record would precede them: a
// lifecycle change recorded before the push of the version it changes.
// So these writes first take what is queued, the way a drain does, and
// append its records before their own, in their transaction. They take
// the queue's rows before the head, in the drains' order: a drain at the
// head has taken its rows already and waits for nothing of theirs, and a
// write that waits for a drain's rows holds no head it waits for. Inline
// appends of events (recordEvents) need none of this: they refuse while
// anything is queued (appendBehindQueue).
//
// A write takes a page (auditBatch) of the queue at most: after an outage
// the queue may hold 100,000 events, which a user's lifecycle change must
// not record in its transaction (its latency, its locks, its statement
// timeout). When its statement finds more queued than that, the write
// fails with errQueueLong, rolled back, and writeAfterQueue records the
// queue a page per transaction, as the drains do (drainAll, the write's
// transaction over: it holds no lock meanwhile), then runs the write
// again. So a write that commits took every event queued when its
// statement began, and the lock order is the drains' still. It runs
// again only when more than a page was queued meanwhile, each time
// after the drains recorded at least that much.

// writeAfterQueue is write for a body that calls appendAfterQueue: run
// again, once the queue is drained, while that finds too much queued.
func (s *Store) writeAfterQueue(ctx context.Context, op string, fn txFunc) error {
	for {
		err := s.write(ctx, op, fn)
		if !errors.Is(err, errQueueLong) {
			return err
		}
		if err := s.drainAll(ctx, auditBatch, 0); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
}

// errQueueLong: more than a page was queued for the trail ahead of a
// write that appends its own records.
var errQueueLong = errors.New("audit: more than a page queued ahead")

// appendAfterQueue is appendAudit for a write that appends its own
// records: those of the events queued for the trail go first. It fails
// with errQueueLong when more than auditBatch were.
func (s *Store) appendAfterQueue(ctx context.Context, tx *sql.Tx, recs []*storage.AuditRecord) error {
	if s.takePageBump == "" {
		// Writes are serial here (SQLite): nothing took a row of the page
		// under the statement, so it took all it saw.
		taken, err := s.rows(ctx, tx, qTakeEvents, storage.AuditConsumer, storage.AuditConsumer, auditBatch+1)
		if err != nil {
			return fmt.Errorf("audit queue: %w", err)
		}
		evs, err := scanEvents(taken)
		switch {
		case err != nil:
			return fmt.Errorf("audit queue: %w", err)
		case len(evs) > auditBatch:
			return errQueueLong
		}
		all := append(auditRecordsOf(evs), recs...)
		if len(all) == 0 {
			return nil
		}
		return s.appendAuditDetails(ctx, tx, all, nil)
	}
	// A page of the queue taken and the head bumped by its count and
	// len(recs) in one statement, which leaves the head locked even when
	// it bumps it by nothing.
	if s.d.LockTimeout != nil {
		if _, err := tx.ExecContext(ctx, s.d.LockTimeout(s.headWait())); err != nil {
			return fmt.Errorf("audit head: %w", err)
		}
	}
	var seen int
	evs, seq, prev, err := s.takeAtHead(ctx, tx, s.takePageBump,
		[]any{storage.AuditConsumer, auditBatch + 1, storage.AuditConsumer, len(recs)}, &seen)
	switch {
	case err != nil && s.d.LockTimedOut != nil && s.d.LockTimedOut(err):
		return storage.Unavailable("the audit trail's head is held by another session", err)
	case err != nil:
		return fmt.Errorf("audit head: %w", err)
	case seen > auditBatch:
		return errQueueLong
	}
	return s.appendAuditAt(ctx, tx, append(auditRecordsOf(evs), recs...), nil, seq, prev)
}

// takeAtHead runs a statement that takes queued events and bumps the
// chain head (takeBumpText, takePageBumpText) with args: the events, and
// the head's seq and previous hash, which every row carries, then the
// columns of extra, the same on every row. A row of id 0 is the head's
// alone (takePageBumpText when nothing was queued).
func (s *Store) takeAtHead(ctx context.Context, tx *sql.Tx, text string, args []any, extra ...any) (evs []storage.Event, seq int64, prev string, err error) {
	start := time.Now()
	rows, err := tx.QueryContext(ctx, text, args...)
	s.observe("query", start, err)
	if err != nil {
		return nil, 0, "", err
	}
	defer rows.Close()
	dest := append([]any{&seq, &prev}, extra...)
	for rows.Next() {
		var e storage.Event
		if err := scanChange(rows, &e, dest...); err != nil {
			return nil, 0, "", err
		}
		if e.ID != 0 {
			evs = append(evs, e)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, 0, "", err
	}
	return evs, seq, prev, nil
}

// takePageBumpText is, for a dialect with Dialect.WritableCTE, the
// statement of appendAfterQueue: the oldest events queued, up to its
// second parameter, taken first, then the head, as a drain takes them
// (takeBumpText). Each row is an event, the head's seq and previous hash,
// and how many events the statement's snapshot held queued (up to that
// limit): those a drain took while it waited for their rows are not
// taken, but seen all the same, so a page seen whole is the whole queue.
// One row of id 0 when none was taken (no event has id 0). "" for the
// others.
func (s *Store) takePageBumpText() string {
	if !s.d.WritableCTE {
		return ""
	}
	return s.sql(`WITH seen AS (SELECT id FROM event_queue WHERE consumer = ? ORDER BY id LIMIT ?),
		taken AS (DELETE FROM event_queue WHERE consumer = ? AND id IN (SELECT id FROM seen)
			RETURNING id, at, actor, action, target, digest, details),
		head AS (UPDATE audit_head SET seq = seq + (SELECT count(*) FROM taken) + ? WHERE id = 1 RETURNING seq, hash)
		SELECT COALESCE(t.id, 0), COALESCE(t.at, 0), COALESCE(t.actor, ''), COALESCE(t.action, ''),
			COALESCE(t.target, ''), COALESCE(t.digest, ''), COALESCE(t.details, '{}'), h.seq, h.hash,
			(SELECT count(*) FROM seen)
		FROM head h LEFT JOIN taken t ON true`)
}
