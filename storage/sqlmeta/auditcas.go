package sqlmeta

import (
	"context"
	"database/sql"
	"sync"

	"github.com/packreg/packreg/storage"
)

// Appending at the head this store left (SerialWrites: SQLite). An append
// read the head (qAuditBump, a query: on SQLite a pass through its Go
// code, and database/sql's watcher goroutine for the rows), then wrote
// the records and the head's hash: three statements of every audited
// write, a blob push's among them. The store remembers the head its last
// append left, and the next one moves the head from there to its own
// last record in one compare-and-set, then inserts the records: two
// statements, no read. The set compares both seq and hash with the row,
// so the records chain from the head as it is in the database whatever
// the memory says: after another process appended, or a transaction
// that appended rolled back, it changes nothing and the append reads the
// head as before.

// knownHead is the head (seq, hash) this store's last append left, maybe
// rolled back since.
type knownHead struct {
	mu   sync.Mutex
	ok   bool
	seq  int64
	hash string
}

func (h *knownHead) set(seq int64, hash string) {
	h.mu.Lock()
	h.ok, h.seq, h.hash = true, seq, hash
	h.mu.Unlock()
}

func (h *knownHead) get() (seq int64, hash string, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seq, h.hash, h.ok
}

// appendAtKnownHead appends recs after the known head, in tx, when the
// dialect's writes are serial and the database's head is still the known
// one; done is false, with tx unchanged, otherwise. On other dialects
// writers of other replicas move the head all the time, and the set would
// mostly fail: a statement more.
func (s *Store) appendAtKnownHead(ctx context.Context, tx *sql.Tx, recs []*storage.AuditRecord, details []string) (done bool, err error) {
	if !s.d.SerialWrites {
		return false, nil
	}
	was, prev, ok := s.head.get()
	if !ok {
		return false, nil
	}
	seq := was + int64(len(recs))
	filled, args, head := chainRecords(recs, details, seq, prev)
	if n, err := s.exec(ctx, tx, qAuditMoveHead, seq, head, was, prev); err != nil || n == 0 {
		return false, err
	}
	if err := s.insertRecords(ctx, tx, args, head); err != nil {
		return false, err
	}
	s.appended(recs, filled, seq, head)
	return true, nil
}

var qAuditMoveHead = query(`UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1 AND seq = ? AND hash = ?`)
