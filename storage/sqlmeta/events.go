package sqlmeta

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// The outbox is event_queue: one row per event and consumer, written by
// the transaction that makes the change (recordEvents) for every consumer
// in event_consumers at that moment, and deleted when the consumer
// acknowledges it. Rows rather than a cursor per consumer: PostgreSQL hands
// out identity values before commit, so a transaction may commit an id
// below one a consumer already passed, and a cursor would skip it. Ids
// are never given twice (on SQLite, AUTOINCREMENT: migration 9), so an
// acknowledgement by id can only ever delete the event it names.

// recordEvents queues evs for every consumer, inside tx, and with
// AuditInline appends their audit records there too (and queues nothing
// for the audit consumer): the change, its events and its records then
// cost one commit instead of two. Writers call it after their own
// statements, so the chain head's lock comes last, and then notify the
// listeners once the transaction committed (committed) when *queued, the
// rows queued (set, not added to: a retried body starts over), says there
// is anything to drain.
func (s *Store) recordEvents(ctx context.Context, tx *sql.Tx, evs []storage.Event, queued *queuedRows) error {
	return s.recordEventsLed(ctx, tx, nil, nil, evs, queued)
}

// recordEventsLed is recordEvents whose first statement also runs lead, a
// data-modifying statement with leadArgs, in its WITH clause (leadTexts):
// a round trip fewer, on a dialect with Dialect.WritableCTE only. lead
// nil: recordEvents. With no events, lead runs alone.
func (s *Store) recordEventsLed(ctx context.Context, tx *sql.Tx, lead []string, leadArgs []any, evs []storage.Event, queued *queuedRows) error {
	*queued = queuedRows{}
	if lead != nil && len(evs) == 0 {
		_, err := s.execText(ctx, tx, lead[0], leadArgs...)
		return err
	}
	if len(evs) == 0 {
		return nil
	}
	// Inline unless another transaction of this store is at the chain
	// head (auditturn.go).
	inline := s.auditInline.Load() && s.appendsInline(ctx)
	exclude := "" // no consumer has an empty name (AddEventConsumer)
	if inline {
		exclude = storage.AuditConsumer
	}
	now := time.Now().UTC()
	details, args := eventColumns(evs, now)
	// Up to eventRows events per statement: each is a round trip, and a
	// manifest push records two events at least (the push, its tag).
	for first := 0; first < len(evs); first += eventRows {
		k := min(len(evs)-first, eventRows)
		chunk := append(slices.Clip(args[first*eventFields:(first+k)*eventFields]), exclude)
		var (
			n   int64
			err error
		)
		if first == 0 && lead != nil {
			n, err = s.execText(ctx, tx, lead[k], append(slices.Clip(leadArgs), chunk...)...)
		} else {
			n, err = s.exec(ctx, tx, qQueueEvents[k-1], chunk...)
		}
		if err != nil {
			return fmt.Errorf("record event %s %s: %w", evs[first].Action, evs[first].Target, err)
		}
		queued.rows += n
	}
	if !inline {
		queued.audit = queued.rows > 0 // some may be the trail's
		return nil
	}
	recs := eventRecords(evs, now)
	if deferAudit(ctx, recs, details) {
		return nil // appended with its batch's (batchaudit.go)
	}
	busy, err := s.appendInline(ctx, tx, recs, details)
	if err != nil {
		return fmt.Errorf("audit record of %s %s: %w", evs[0].Action, evs[0].Target, err)
	}
	if busy {
		// The head stayed locked (Dialect.AuditLockWait): the trail gets
		// these from the outbox, as before inline auditing.
		for i, e := range evs {
			n, err := s.exec(ctx, tx, qQueueEventFor, storage.AuditConsumer, recs[i].At.UnixNano(), e.Actor, e.Action,
				e.Target, string(e.Digest), details[i])
			if err != nil {
				return fmt.Errorf("record event %s %s: %w", e.Action, e.Target, err)
			}
			queued.rows += n
		}
		queued.audit = true
	}
	return nil
}

// eventColumns is the columns of evs as qQueueEvents takes them, events
// without a time at now, and their details encoded: once, for the event,
// the audit record and its hash.
func eventColumns(evs []storage.Event, now time.Time) (details []string, args []any) {
	details = make([]string, len(evs))
	args = make([]any, 0, len(evs)*eventFields+1)
	for i, e := range evs {
		at := e.At
		if at.IsZero() {
			at = now
		}
		details[i] = storage.AuditDetailsJSON(e.Details)
		args = append(args, at.UnixNano(), e.Actor, e.Action, e.Target, string(e.Digest), details[i])
	}
	return details, args
}

// eventRecords is the audit records of evs, those without a time at now
// (the event's time, as a queued event would keep it).
func eventRecords(evs []storage.Event, now time.Time) []*storage.AuditRecord {
	recs := make([]*storage.AuditRecord, len(evs))
	for i := range evs {
		recs[i] = evs[i].AuditRecord()
		if recs[i].At.IsZero() {
			recs[i].At = now
		}
	}
	return recs
}

// queuedRows is what a write queued in the outbox: rows, for every
// consumer, and whether some may be the audit trail's (false when the
// write appended its records inline), for committed.
type queuedRows struct {
	rows  int64
	audit bool
}

// nothingForAudit marks the context of the listeners of a commit that
// queued nothing for the audit trail, queuedForAudit of one that queued
// some (see AuditEvents).
type (
	nothingForAudit struct{}
	queuedForAudit  struct{}
)

// appendInline appends recs in tx, waiting for the chain head's lock at
// most as long as Dialect.AuditLockWait allows, and then only if no event
// waits for the trail (appendBehindQueue); busy reports a wait cut short
// or events waiting, after which tx is as it was before (a savepoint).
func (s *Store) appendInline(ctx context.Context, tx *sql.Tx, recs []*storage.AuditRecord, details []string) (busy bool, err error) {
	if s.d.AuditLockWait == "" {
		return false, s.appendAuditDetails(ctx, tx, recs, details)
	}
	// One round trip for both (statements without parameters go as one
	// simple query). The savepoint is not released after a successful
	// append: that would be a round trip more while the head's lock is
	// held, and the savepoint ends with the transaction anyway (recordEvents
	// comes last in it).
	if _, err := tx.ExecContext(ctx, "SAVEPOINT audit_inline; "+s.d.AuditLockWait); err != nil {
		return false, err
	}
	err = s.appendBehindQueue(ctx, tx, recs, details)
	if err != nil && s.inlineRefused(err) {
		_, err = tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT audit_inline")
		busy = true
	}
	return busy && err == nil, err
}

// AuditInline is storage.InlineAuditor's.
func (s *Store) AuditInline() { s.auditInline.Store(true) }

// writeRow runs q, which must change one row, and records evs with it in
// one transaction; when q changes none the write fails with none (the
// caller's ErrConflict or ErrNotFound, naming what it wrote).
func (s *Store) writeRow(ctx context.Context, op string, none error, evs []storage.Event, q *Query, args ...any) error {
	return s.writeQueued(ctx, op, func(ctx context.Context, tx *sql.Tx, queued *queuedRows) error {
		n, err := s.exec(ctx, tx, q, args...)
		if err == nil && n == 0 {
			err = none
		}
		if err != nil {
			return err
		}
		return s.recordEvents(ctx, tx, evs, queued)
	})
}

// writeQueued is write for a body that records events (recordEvents or
// recordWith, into *queued): once it commits, the listeners hear of it
// when it queued any (committed).
func (s *Store) writeQueued(ctx context.Context, op string, fn func(ctx context.Context, tx *sql.Tx, queued *queuedRows) error) error {
	var queued queuedRows
	err := s.writeAs(ctx, op, func(ctx context.Context, tx *sql.Tx) error { return fn(ctx, tx, &queued) }, writeDefersAudit)
	return s.committed(ctx, err, queued)
}

// committed tells the listeners that a write that queued events
// committed. One that queued none (a blob push, which no drainer but the
// inline audit trail wants) wakes nobody: each wake-up was a read per
// listener. One that queued nothing for the audit trail says so in the
// listeners' context, and the audit drain it wakes reads nothing.
func (s *Store) committed(ctx context.Context, err error, queued queuedRows) error {
	if err != nil || queued.rows == 0 {
		return err
	}
	if queued.audit {
		ctx = context.WithValue(ctx, queuedForAudit{}, true)
	} else {
		ctx = context.WithValue(ctx, nothingForAudit{}, true)
	}
	s.lmu.Lock()
	ls := s.listeners
	s.lmu.Unlock()
	ctx = context.WithoutCancel(ctx)
	for _, fn := range ls {
		fn(ctx)
	}
	return nil
}

func (s *Store) OnEvents(fn func(ctx context.Context)) {
	s.lmu.Lock()
	s.listeners = append(s.listeners, fn)
	s.lmu.Unlock()
}

func (s *Store) AddEventConsumer(ctx context.Context, consumer string, skip ...string) error {
	if consumer == "" {
		return fmt.Errorf("sqlmeta: empty event consumer name")
	}
	return s.write(ctx, "add event consumer", func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, qAddConsumer, consumer); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, qClearSkips, consumer); err != nil {
			return err
		}
		for _, entry := range skip {
			action, like := storage.ParseSkip(entry)
			if _, err := s.exec(ctx, tx, qAddSkip, consumer, action, like); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) PendingEvents(ctx context.Context, consumer string, n int) ([]storage.Event, error) {
	return s.PendingEventsAfter(ctx, consumer, 0, n) // IDs start at 1
}

// PendingEventsAfter is PendingEvents from the first event of consumer
// with an ID above after (compliance.BacklogReader): the compliance
// worker reads its whole backlog a page at a time, and evaluates each
// repository it touches once, before it acknowledges any of it.
func (s *Store) PendingEventsAfter(ctx context.Context, consumer string, after int64, n int) ([]storage.Event, error) {
	rows, err := s.rows(ctx, s.r, qPendingEventsAfter, consumer, after, limitArg(n))
	if err != nil {
		return nil, s.fail("pending events", err)
	}
	evs, err := scanEvents(rows)
	return evs, s.fail("pending events", err)
}

func (s *Store) AckEvents(ctx context.Context, consumer string, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	// Up to ackRows per statement: a consumer acknowledges what it read,
	// two events or more per manifest PUT, and each statement is a round
	// trip on PostgreSQL. One statement is atomic on its own: alone, it
	// goes without a transaction, whose BEGIN and COMMIT were two round
	// trips more (not under group commit, which shares one).
	ack := func(ctx context.Context, on querier, chunk []int64) error {
		args := make([]any, 0, len(chunk)+1)
		args = append(args, consumer)
		for _, id := range chunk {
			args = append(args, id)
		}
		_, err := s.exec(ctx, on, qAckEvents[len(chunk)-1], args...)
		return err
	}
	if len(ids) <= ackRows && s.ops == nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		return s.retried(ctx, "ack events", func() error { return ack(ctx, s.w, ids) })
	}
	return s.write(ctx, "ack events", func(ctx context.Context, tx *sql.Tx) error {
		for chunk := range slices.Chunk(ids, ackRows) {
			if err := ack(ctx, tx, chunk); err != nil {
				return err
			}
		}
		return nil
	})
}

// ackRows is how many events one statement of AckEvents deletes.
const ackRows = 16

func (s *Store) CountPendingEvents(ctx context.Context, consumer string) (int64, error) {
	var n int64
	err := s.row(ctx, s.r, qCountEvents, consumer).Scan(&n)
	return n, s.fail("count pending events", err)
}

// auditBatch is the default number of events AuditEvents records at once.
const auditBatch = 256

// AuditEvents deletes the pending events it records, in the transaction
// that appends their records: a concurrent drain (another replica) that
// picked the same rows waits for their locks, then skips them, so no
// event is recorded twice. Drains of this store take turns, and those
// called while one runs share the next (drainTurns).
func (s *Store) AuditEvents(ctx context.Context, n int) (int, error) {
	if n <= 0 {
		n = auditBatch
	}
	// Little is queued once writes record inline (AuditInline): what
	// writes queue while another is under way (auditturn.go), and a drain
	// that finds nothing must not cost a write transaction
	// (and a commit) after every change. An event committed after this
	// read is drained by its own writer's listeners, or by the next Run.
	// A drain woken by a write that queued nothing for the trail (it
	// appended its records inline) does not even read: that read was a
	// round trip of every manifest PUT; what other writes queued, their
	// own listeners drain.
	if ctx.Value(nothingForAudit{}) != nil {
		return 0, nil
	}
	// A listener's drain after a commit that queued for the trail runs
	// behind the write's answer (drainbehind.go).
	if ctx.Value(queuedForAudit{}) != nil && s.drainsBehind() {
		return 0, s.drainBehind(n)
	}
	return s.drains.do(ctx, n, s.auditEvents)
}

// auditEvents is one drain of AuditEvents. While it runs, this store's
// writes queue their events rather than wait for the head behind it.
func (s *Store) auditEvents(ctx context.Context, n int) (int, error) {
	// A drain woken by a write that queued for the trail does not look
	// first: there is something, unless a drain took it meanwhile, and
	// then the transaction deletes nothing and appends nothing.
	if ctx.Value(queuedForAudit{}) == nil {
		var one int
		switch err := s.row(ctx, s.r, qAnyEvent, storage.AuditConsumer).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return 0, nil
		case err != nil:
			return 0, s.fail("audit events", err)
		}
	}
	s.auditHeld.Add(1)
	defer s.auditHeld.Add(-1)
	var done int
	err := s.write(ctx, "audit events", func(ctx context.Context, tx *sql.Tx) error {
		done = 0
		// Taken and acknowledged in one statement (a round trip per event
		// was most of a drain's time), before the head's lock is taken:
		// a concurrent drain (another replica) that picked the same rows
		// waits for their locks and then skips them, deleted, so each
		// event is taken once; the appends keep the head's order.
		if s.takeBump != "" {
			return s.takeAndAppend(ctx, tx, n, &done)
		}
		rows, err := s.rows(ctx, tx, qTakeEvents, storage.AuditConsumer, storage.AuditConsumer, n)
		if err != nil {
			return err
		}
		evs, err := scanEvents(rows)
		if err != nil || len(evs) == 0 {
			return err
		}
		recs := auditRecordsOf(evs)
		if err := s.appendAudit(ctx, tx, recs); err != nil {
			return err
		}
		done = len(evs)
		return nil
	})
	return done, err
}

// takeAndAppend is a drain's body where the events taken and the head
// bumped by their count go in one statement (takeBumpText): a round trip
// fewer at the head, of four.
func (s *Store) takeAndAppend(ctx context.Context, tx *sql.Tx, n int, done *int) error {
	evs, seq, prev, err := s.takeAtHead(ctx, tx, s.takeBump, []any{storage.AuditConsumer, storage.AuditConsumer, n})
	if err != nil || len(evs) == 0 {
		return err
	}
	if err := s.appendAuditAt(ctx, tx, auditRecordsOf(evs), nil, seq, prev); err != nil {
		return err
	}
	*done = len(evs)
	return nil
}

// auditRecordsOf is the audit records of evs, in the order of their ids
// (the order they were queued in).
func auditRecordsOf(evs []storage.Event) []*storage.AuditRecord {
	slices.SortFunc(evs, func(a, b storage.Event) int { return cmp.Compare(a.ID, b.ID) })
	recs := make([]*storage.AuditRecord, len(evs))
	for i := range evs {
		recs[i] = evs[i].AuditRecord()
	}
	return recs
}

// takeBumpText is, for a dialect with Dialect.WritableCTE, qTakeEvents
// with the chain head bumped by the count of the events taken, in one
// statement: the events' rows first, then the head, as ever. Each row
// is an event and the head's seq and previous hash. "" for the others.
func (s *Store) takeBumpText() string {
	if !s.d.WritableCTE {
		return ""
	}
	return s.sql(`WITH taken AS (` + qTakeEvents.text + `),
		head AS (UPDATE audit_head SET seq = seq + (SELECT count(*) FROM taken)
			WHERE id = 1 AND EXISTS (SELECT 1 FROM taken) RETURNING seq, hash)
		SELECT t.id, t.at, t.actor, t.action, t.target, t.digest, t.details, h.seq, h.hash
		FROM taken t CROSS JOIN head h`)
}

func scanEvents(rows *sql.Rows) ([]storage.Event, error) {
	defer rows.Close()
	var out []storage.Event
	for rows.Next() {
		var e storage.Event
		if err := scanChange(rows, &e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// scanChange reads the columns an event and an audit record share (id,
// at, actor, action, target, digest, details) into e, then extra.
func scanChange(sc interface{ Scan(...any) error }, e *storage.Event, extra ...any) error {
	var (
		at      int64
		dg, det string
	)
	if err := sc.Scan(append([]any{&e.ID, &at, &e.Actor, &e.Action, &e.Target, &dg, &det}, extra...)...); err != nil {
		return err
	}
	e.At = time.Unix(0, at).UTC()
	e.Digest = digest.Digest(dg)
	// Details edited into invalid JSON must still be read (an audit row
	// then fails verification; an event is recorded as it is), not stop
	// a listing or the queue.
	if err := json.Unmarshal([]byte(det), &e.Details); err != nil {
		e.Details = map[string]string{"unparsable": det}
	}
	if len(e.Details) == 0 {
		e.Details = nil
	}
	return nil
}

var (
	// One row per event and registered consumer, for 1 to eventRows
	// events (queueEventsText).
	qQueueEvents = queriesUpTo(eventRows, queueEventsText)
	qAddConsumer = query(`INSERT INTO event_consumers (name) VALUES (?) ON CONFLICT (name) DO NOTHING`)
	qClearSkips  = query(`DELETE FROM event_consumer_skips WHERE consumer = ?`)
	qAddSkip     = query(`INSERT INTO event_consumer_skips (consumer, action, except_like) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`)
	// One statement for the head of a queue (after 0) and the pages
	// past it: the same index range either way.
	qPendingEventsAfter = query(`SELECT id, at, actor, action, target, digest, details FROM event_queue
		WHERE consumer = ? AND id > ? ORDER BY id LIMIT ?`)
	qAckEvents = queriesUpTo(ackRows, func(n int) string {
		return `DELETE FROM event_queue WHERE consumer = ? AND id IN (?` + strings.Repeat(", ?", n-1) + `)`
	})
	qCountEvents = query(`SELECT count(*) FROM event_queue WHERE consumer = ?`)
	qAnyEvent    = query(`SELECT 1 FROM event_queue WHERE consumer = ? LIMIT 1`)
	// The oldest n events of a consumer, deleted: read and acknowledged at
	// once (RETURNING gives them in no particular order).
	qTakeEvents = query(`DELETE FROM event_queue WHERE consumer = ? AND id IN (SELECT id FROM event_queue
		WHERE consumer = ? ORDER BY id LIMIT ?) RETURNING id, at, actor, action, target, digest, details`)
	// One consumer's row: the audit trail's when its head stayed locked.
	qQueueEventFor = query(`INSERT INTO event_queue (consumer, at, actor, action, target, digest, details)
		VALUES (?, ?, ?, ?, ?, ?, ?)`)
)

// eventFields is how many parameters each event of qQueueEvents takes,
// eventRows how many events one statement queues at most.
const (
	eventFields = 6
	eventRows   = 4
)

// leadTexts is, for a dialect with Dialect.WritableCTE, the statements
// that run q (a data-modifying statement) and then queue k events
// (queueEventsText) in one, at index k; index 0 is q alone. nil for the
// other dialects, whose WITH holds no INSERT.
func (s *Store) leadTexts(q *Query) []string {
	if !s.d.WritableCTE {
		return nil
	}
	out := make([]string, eventRows+1)
	out[0] = s.sql(q.text)
	for k := 1; k <= eventRows; k++ {
		queue, ok := strings.CutPrefix(queueEventsText(k), "WITH ")
		if !ok {
			panic("sqlmeta: queueEventsText does not start with WITH")
		}
		out[k] = s.sql("WITH lead AS (" + q.text + "), " + queue)
	}
	return out
}

// queueEventsText queues n events (at, actor, action, target, digest,
// details each, then the consumer to leave out) for every consumer that
// does not skip the event's action (for its target: storage.SkipExcept),
// in the events' order and, within one, the consumers'.
func queueEventsText(n int) string {
	return "WITH " + eventValuesText(n) + "\n" + queueEventsFrom("")
}

// eventValuesText is the WITH query e of queueEventsText: n events as
// rows. The casts give PostgreSQL the parameters' types, which VALUES
// cannot infer.
func eventValuesText(n int) string {
	var b strings.Builder
	b.WriteString(`e (n, at, actor, action, target, digest, details) AS (VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `(%d, CAST(? AS {{int}}), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT))`, i)
	}
	b.WriteString(`)`)
	return b.String()
}

// queueEventsFrom is the INSERT of queueEventsText, reading e, with cond
// ("AND ...") added to its WHERE.
func queueEventsFrom(cond string) string {
	return `INSERT INTO event_queue (consumer, at, actor, action, target, digest, details)
		SELECT c.name, e.at, e.actor, e.action, e.target, e.digest, e.details
		FROM e CROSS JOIN event_consumers c WHERE c.name <> CAST(? AS TEXT) AND NOT EXISTS (SELECT 1
			FROM event_consumer_skips k WHERE k.consumer = c.name AND k.action = e.action
			AND (k.except_like = '' OR e.target NOT LIKE k.except_like))` + cond + ` ORDER BY e.n, c.name`
}
