package sqlmeta

import (
	"context"
	"database/sql"

	"github.com/packreg/packreg/storage"
)

// Write exposes the write path (group commit included) to the tests.
func (s *Store) Write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.write(ctx, "test", fn)
}

// Rebind exposes placeholder rewriting.
func (d *Dialect) Rebind(q string) string { return d.rebind(q) }

// MigrateTo brings db to schema version, as an older release would have.
func MigrateTo(ctx context.Context, db *sql.DB, d Dialect, version int) error {
	s := &Store{w: db, r: db, d: d}
	return s.migrateTo(ctx, version)
}

// Writers is how many writes are in the group commit's submit.
func (s *Store) Writers() int64 { return s.writers.Load() }

// DecodeFiles and DecodeLabels expose the reading of pack_versions' JSON
// columns (packjson.go).
var (
	DecodeFiles  = decodeFiles
	DecodeLabels = decodeLabels
)

// BatchOp is one write of Batch: it records Events, then runs Then (if
// set); Plain, it defers nothing to the batch, as a write that is not
// writeQueued.
type BatchOp struct {
	Events []storage.Event
	Then   func(ctx context.Context, tx *sql.Tx) error
	Plain  bool
}

// Queued is what one write of Batch queued (queuedRows), for committed.
type Queued struct {
	Rows  int64
	Audit bool
}

// Batch runs ops as one batch of the group commit, in their order, and
// returns what each one returned and queued.
func (s *Store) Batch(ops ...BatchOp) ([]error, []Queued) {
	ws := make([]*writeOp, len(ops))
	queued := make([]queuedRows, len(ops))
	for i, op := range ops {
		fn := func(ctx context.Context, tx *sql.Tx) error {
			if err := s.recordEvents(ctx, tx, op.Events, &queued[i]); err != nil || op.Then == nil {
				return err
			}
			return op.Then(ctx, tx)
		}
		ws[i] = &writeOp{ctx: context.Background(), fn: fn, defers: !op.Plain, done: make(chan error, 1)}
	}
	s.wmu.Lock()
	s.runBatch(ws)
	s.wmu.Unlock()
	errs := make([]error, len(ops))
	out := make([]Queued, len(ops))
	for i, w := range ws {
		errs[i] = <-w.done
		out[i] = Queued{queued[i].rows, queued[i].audit}
	}
	return errs, out
}

// ReferrersQueries are the texts of Referrers' statements.
func ReferrersQueries() []string { return []string{qReferrers.text, qReferrersOfType.text} }
