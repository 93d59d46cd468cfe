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

// appendAfterQueue is appendAudit for a write that appends its own
// records: those of the events queued for the trail go first.
func (s *Store) appendAfterQueue(ctx context.Context, tx *sql.Tx, recs []*storage.AuditRecord) error {
	if s.takeAllBump == "" {
		taken, err := s.rows(ctx, tx, qTakeAllEvents, storage.AuditConsumer)
		if err != nil {
			return fmt.Errorf("audit queue: %w", err)
		}
		evs, err := scanEvents(taken)
		if err != nil {
			return fmt.Errorf("audit queue: %w", err)
		}
		all := append(auditRecordsOf(evs), recs...)
		if len(all) == 0 {
			return nil
		}
		return s.appendAuditDetails(ctx, tx, all, nil)
	}
	// Every queued event taken and the head bumped by their count and
	// len(recs) in one statement, which leaves the head locked even when
	// it bumps it by nothing.
	evs, seq, prev, err := s.takeAtHead(ctx, tx, s.takeAllBump, storage.AuditConsumer, len(recs))
	if err != nil {
		return fmt.Errorf("audit head: %w", err)
	}
	return s.appendAuditAt(ctx, tx, append(auditRecordsOf(evs), recs...), nil, seq, prev)
}

// takeAtHead runs a statement that takes queued events and bumps the
// chain head (takeBumpText, takeAllBumpText): the events, and the head's
// seq and previous hash, which every row carries. A row of id 0 is the
// head's alone (takeAllBumpText when nothing was queued).
func (s *Store) takeAtHead(ctx context.Context, tx *sql.Tx, text string, args ...any) (evs []storage.Event, seq int64, prev string, err error) {
	start := time.Now()
	rows, err := tx.QueryContext(ctx, text, args...)
	s.observe("query", start, err)
	if err != nil {
		return nil, 0, "", err
	}
	defer rows.Close()
	for rows.Next() {
		var e storage.Event
		if err := scanChange(rows, &e, &seq, &prev); err != nil {
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

// takeAllBumpText is, for a dialect with Dialect.WritableCTE, the
// statement of appendAfterQueue: the queued events' rows first, then the
// head, as a drain takes them (takeBumpText). Each row is an event and
// the head's seq and previous hash; one row of id 0 when none was queued
// (no event has id 0). "" for the others.
func (s *Store) takeAllBumpText() string {
	if !s.d.WritableCTE {
		return ""
	}
	return s.sql(`WITH taken AS (` + qTakeAllEvents.text + `),
		head AS (UPDATE audit_head SET seq = seq + (SELECT count(*) FROM taken) + ? WHERE id = 1 RETURNING seq, hash)
		SELECT COALESCE(t.id, 0), COALESCE(t.at, 0), COALESCE(t.actor, ''), COALESCE(t.action, ''),
			COALESCE(t.target, ''), COALESCE(t.digest, ''), COALESCE(t.details, '{}'), h.seq, h.hash
		FROM head h LEFT JOIN taken t ON true`)
}

// qTakeAllEvents takes (deletes) every event queued for a consumer.
var qTakeAllEvents = query(`DELETE FROM event_queue WHERE consumer = ?
	RETURNING id, at, actor, action, target, digest, details`)
