package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/packreg/packreg/storage"
)

// The audit trail is audit_log plus its one-row head, audit_head (seq: the
// last ID handed out, hash: that record's hash). An append first bumps
// seq, which locks the head row until commit: on PostgreSQL a row lock that
// makes concurrent appenders (other replicas too) wait their turn, on
// SQLite the database write lock it already holds. Reading the previous
// hash after taking that lock is what keeps concurrent appends one chain.

func (s *Store) AppendAudit(ctx context.Context, recs ...*storage.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	return s.writeAfterQueue(ctx, "append audit", func(ctx context.Context, tx *sql.Tx) error {
		return s.appendAfterQueue(ctx, tx, recs)
	})
}

func (s *Store) AppendAuditIfChanged(ctx context.Context, rec *storage.AuditRecord) (bool, error) {
	var appended bool
	err := s.writeAfterQueue(ctx, "append audit if changed", func(ctx context.Context, tx *sql.Tx) error {
		appended = false
		// What is queued for the trail first (auditafter.go), which
		// takes the head's lock before the read: on PostgreSQL its
		// statement updates the head's row, even by nothing; SQLite's
		// transaction holds the one write lock from its BEGIN
		// (SerialWrites). A concurrent caller waits there, then reads
		// what this one appended (each statement of a PostgreSQL READ
		// COMMITTED transaction sees what committed before it began).
		if err := s.appendAfterQueue(ctx, tx, nil); err != nil {
			return err
		}
		var last string
		err := s.row(ctx, tx, qLastAuditDetails, rec.Action, rec.Target).Scan(&last)
		switch {
		case err == nil && last == storage.AuditDetailsJSON(rec.Details):
			return nil
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if err := s.appendAuditDetails(ctx, tx, []*storage.AuditRecord{rec}, nil); err != nil {
			return err
		}
		appended = true
		return nil
	})
	return appended && err == nil, err
}

// appendAudit extends the chain inside tx: a drain's records. Writes
// that append their own go through appendAfterQueue, last in their
// transaction, so the head lock is held as briefly as possible and
// always after their own row locks (one lock order: no deadlocks).
func (s *Store) appendAudit(ctx context.Context, tx *sql.Tx, recs []*storage.AuditRecord) error {
	return s.appendAuditDetails(ctx, tx, recs, nil)
}

// appendAuditDetails is appendAudit with the details of recs already
// encoded (storage.AuditDetailsJSON), when the caller has them: each
// encoding is a sorted map marshalled, and the hash and the row share one.
// details is nil when it has not.
func (s *Store) appendAuditDetails(ctx context.Context, tx *sql.Tx, recs []*storage.AuditRecord, details []string) error {
	if done, err := s.appendAtKnownHead(ctx, tx, recs, details); done || err != nil {
		return err
	}
	var (
		seq  int64
		prev string
	)
	if err := s.row(ctx, tx, qAuditBump, len(recs)).Scan(&seq, &prev); err != nil {
		return fmt.Errorf("audit head: %w", err)
	}
	return s.appendAuditAt(ctx, tx, recs, details, seq, prev)
}

// appendAuditAt is appendAuditDetails once the head is bumped by
// len(recs), to seq, and prev is the hash it had.
func (s *Store) appendAuditAt(ctx context.Context, tx *sql.Tx, recs []*storage.AuditRecord, details []string, seq int64, prev string) error {
	// The body may run again (a retried transaction): work on copies and
	// fill the caller's records only once the statements succeeded.
	filled, args, head := chainRecords(recs, details, seq, prev)
	if err := s.insertAudit(ctx, tx, args, head); err != nil {
		return err
	}
	s.appended(recs, filled, seq, head)
	return nil
}

// appended fills recs from filled, their statements done, and remembers
// the head they leave (seq, head).
func (s *Store) appended(recs []*storage.AuditRecord, filled []storage.AuditRecord, seq int64, head string) {
	for i, r := range recs {
		*r = filled[i]
	}
	s.head.set(seq, head)
}

// chainRecords is copies of recs chained after prev, the last of them
// numbered seq, their columns as qAuditInsert takes them, and the hash
// of the last, the head's new one. details as appendAuditDetails's.
func chainRecords(recs []*storage.AuditRecord, details []string, seq int64, prev string) (filled []storage.AuditRecord, args []any, head string) {
	now := time.Now().UTC()
	filled = make([]storage.AuditRecord, len(recs))
	args = make([]any, 0, len(recs)*auditFields)
	for i, r := range recs {
		c := *r
		c.ID = seq - int64(len(recs)) + int64(i) + 1
		if c.At.IsZero() {
			c.At = now
		}
		c.At = c.At.UTC()
		c.PrevHash = prev
		var dj string
		if details != nil {
			dj = details[i]
		} else {
			dj = storage.AuditDetailsJSON(c.Details)
		}
		c.Hash = storage.AuditHashDetails(&c, dj)
		args = append(args, c.ID, c.At.UnixNano(), c.Actor, c.Action, c.Target,
			string(c.Digest), dj, c.PrevHash, c.Hash)
		prev = c.Hash
		filled[i] = c
	}
	return filled, args, prev
}

// insertAudit inserts the records whose columns are args (auditFields
// each) and moves the head's hash to head. These statements run while the
// head's lock is held, which every writer of every replica waits for, so
// they are few: the records go in by up to auditRows per statement, and
// where a WITH clause may hold an INSERT (Dialect.WritableCTE) the last of
// them sets the head too. A round trip fewer per record under the lock was
// the most of what the lock's holder spent waiting, after the commit.
func (s *Store) insertAudit(ctx context.Context, tx *sql.Tx, args []any, head string) error {
	if err := s.insertRecords(ctx, tx, args, head); err != nil || s.auditLast != nil {
		return err
	}
	_, err := s.exec(ctx, tx, qAuditSetHead, head)
	return err
}

// insertRecords is insertAudit without setting the head's hash, but where
// a dialect's last insert sets it (auditLast).
func (s *Store) insertRecords(ctx context.Context, tx *sql.Tx, args []any, head string) error {
	for len(args) > 0 {
		rows := len(args) / auditFields
		if s.auditLast != nil && rows <= auditRows {
			_, err := s.execText(ctx, tx, s.auditLast[rows-1], append(args, head)...)
			return err
		}
		q, n := qAuditInsert.fit(rows)
		if _, err := s.exec(ctx, tx, q, args[:n*auditFields]...); err != nil {
			return err
		}
		args = args[n*auditFields:]
	}
	return nil
}

// auditLastTexts is, for each qAuditInsert, the statement that inserts
// those rows and sets the head's hash (its last parameter) in one, for a
// dialect with Dialect.WritableCTE; nil for the others.
func (s *Store) auditLastTexts() []string {
	if !s.d.WritableCTE {
		return nil
	}
	out := make([]string, auditRows)
	for i := range out {
		ins := auditInsertText(i + 1)
		out[i] = s.sql("WITH ins AS (" + ins + ") " + qAuditSetHead.text)
	}
	return out
}

func (s *Store) ListAudit(ctx context.Context, q storage.AuditQuery) ([]storage.AuditRecord, error) {
	if err := s.caughtUp(ctx); err != nil {
		return nil, err
	}
	before := q.Before
	if before <= 0 {
		before = math.MaxInt64
	}
	args := []any{before}
	var mask int
	if !q.Since.IsZero() {
		mask |= auditSince
		args = append(args, q.Since.UnixNano())
	}
	if q.Action != "" {
		mask |= auditAction
		args = append(args, q.Action)
	}
	if q.TargetPrefix != "" {
		mask |= auditTarget
		args = append(args, q.TargetPrefix, prefixEnd(q.TargetPrefix))
	}
	args = append(args, limitArg(q.Limit))
	rows, err := s.rows(ctx, s.r, qListAudit[mask], args...)
	if err != nil {
		return nil, s.fail("list audit", err)
	}
	recs, err := scanAudit(rows)
	return recs, s.fail("list audit", err)
}

func (s *Store) ScanAudit(ctx context.Context, after int64, n int) ([]storage.AuditRecord, error) {
	if err := s.caughtUp(ctx); err != nil {
		return nil, err
	}
	rows, err := s.rows(ctx, s.r, qScanAudit, after, limitArg(n))
	if err != nil {
		return nil, s.fail("scan audit", err)
	}
	recs, err := scanAudit(rows)
	return recs, s.fail("scan audit", err)
}

func (s *Store) AuditHead(ctx context.Context) (storage.AuditHead, error) {
	var h storage.AuditHead
	if err := s.caughtUp(ctx); err != nil {
		return h, err
	}
	err := s.row(ctx, s.r, qAuditHead).Scan(&h.ID, &h.Hash)
	return h, s.fail("audit head", err)
}

func scanAudit(rows *sql.Rows) ([]storage.AuditRecord, error) {
	defer rows.Close()
	var out []storage.AuditRecord
	for rows.Next() {
		var (
			e          storage.Event
			prev, hash string
		)
		if err := scanChange(rows, &e, &prev, &hash); err != nil {
			return nil, err
		}
		r := e.AuditRecord()
		r.ID, r.PrevHash, r.Hash = e.ID, prev, hash
		out = append(out, *r)
	}
	return out, rows.Err()
}

// limitArg turns "no limit" into a LIMIT both databases accept.
func limitArg(n int) int64 {
	if n <= 0 {
		return math.MaxInt64
	}
	return int64(n)
}

// prefixEnd is the smallest string above every string starting with p, in
// byte order, for `col >= p AND col < prefixEnd(p)` range scans. Names and
// targets are ASCII, so appending DEL (0x7f, the highest ASCII byte, and
// valid UTF-8 for PostgreSQL) is enough.
func prefixEnd(p string) string { return p + "\x7f" }

// Filters of ListAudit, as bits of the index into qListAudit.
const (
	auditSince = 1 << iota
	auditAction
	auditTarget
)

const auditColumns = `id, at, actor, action, target, digest, details, prev_hash, hash`

var (
	qAuditBump    = query(`UPDATE audit_head SET seq = seq + ? WHERE id = 1 RETURNING seq, hash`)
	qAuditSetHead = query(`UPDATE audit_head SET hash = ? WHERE id = 1`)
	qAuditHead    = query(`SELECT seq, hash FROM audit_head WHERE id = 1`)
	// Details are stored canonical (AuditDetailsJSON), so equal strings
	// are equal details.
	qLastAuditDetails = query(`SELECT details FROM audit_log WHERE action = ? AND target = ? ORDER BY id DESC LIMIT 1`)
	// By powers of two (sizedQueries): prepared on SQLite's writer, one
	// per count held ~1 MiB more for the life of the process, and SQLite
	// runs the extra statements of an odd count in-process. PostgreSQL
	// ends with one statement of the exact count (auditLast).
	qAuditInsert = queriesPow2(auditRows, auditInsertText)
	qScanAudit   = query(`SELECT ` + auditColumns + ` FROM audit_log WHERE id > ? ORDER BY id LIMIT ?`)
	// One prepared statement per combination of filters, so each keeps a
	// plan that uses the right index.
	qListAudit = queryVariants(`SELECT `+auditColumns+` FROM audit_log WHERE id < ?`,
		[]string{` AND at >= ?`, ` AND action = ?`, ` AND target >= ? AND target < ?`},
		` ORDER BY id DESC LIMIT ?`)
)

// auditFields is the number of audit_log's columns (auditColumns), and
// auditRows how many rows one insert writes at most: a write records one
// event per change and one per tag it moves, rarely more, but a drain
// appends the events of every write that queued while the head was taken
// (tens under load), each statement a round trip at the head.
const (
	auditFields = 9
	auditRows   = 32
)

func auditInsertText(rows int) string {
	row := "(?" + strings.Repeat(", ?", auditFields-1) + ")"
	return `INSERT INTO audit_log (` + auditColumns + `) VALUES ` + row + strings.Repeat(", "+row, rows-1)
}

// queryVariants registers base + a subset of filters + tail for every
// subset; the result is indexed by the bit mask of the filters used.
func queryVariants(base string, filters []string, tail string) []*Query {
	out := make([]*Query, 1<<len(filters))
	for mask := range out {
		text := base
		for i, f := range filters {
			if mask&(1<<i) != 0 {
				text += f
			}
		}
		out[mask] = query(text + tail)
	}
	return out
}
