package sqlmeta

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/packreg/packreg/storage"
)

// Audit records of a group commit's batch. A write that appends its
// events' records inline paid three statements for them (bump the chain
// head, insert the records, set the head's hash), each a pass through
// SQLite's Go code on the one writer goroutine that every writer waits
// for: a fifth of its time in a batch of manifest PUTs. A write of a
// batch of several that records events (writeQueued: a manifest push, a
// tag, a blob link...) now leaves its records with the batch, which
// appends the records of all such writes in one go, in the writes'
// order: before the
// first write that does not record events (it may read or extend the
// chain itself: AppendAuditIfChanged, a drain, a pack change), and
// before the commit. A write rolled back to its savepoint leaves none.
// The records are in the transaction of the changes they describe, as
// before, so a change and its record still commit together; the chain is
// the same one, record for record.

// batchRecords collects the records (and their encoded details) of one
// write, then of the writes of the batch that released.
type batchRecords struct {
	recs    []*storage.AuditRecord
	details []string
}

type batchRecordsKey struct{}

// deferAudit leaves recs with the batch of ctx's write, if it takes them.
func deferAudit(ctx context.Context, recs []*storage.AuditRecord, details []string) bool {
	b, _ := ctx.Value(batchRecordsKey{}).(*batchRecords)
	if b == nil {
		return false
	}
	b.recs = append(b.recs, recs...)
	b.details = append(b.details, details...)
	return true
}

// add takes the records of a write that released its savepoint.
func (b *batchRecords) add(w *batchRecords) {
	b.recs = append(b.recs, w.recs...)
	b.details = append(b.details, w.details...)
}

// flushAudit appends the records collected so far, in tx.
func (s *Store) flushAudit(ctx context.Context, tx *sql.Tx, b *batchRecords) error {
	if len(b.recs) == 0 {
		return nil
	}
	n := len(b.recs)
	err := s.appendAuditDetails(ctx, tx, b.recs, b.details)
	*b = batchRecords{}
	if err != nil {
		return fmt.Errorf("audit records of %d writes: %w", n, err)
	}
	return nil
}
