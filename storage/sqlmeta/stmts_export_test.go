package sqlmeta

import (
	"context"
	"database/sql"
	"strings"
)

func isSelect(text string) bool { return strings.HasPrefix(strings.TrimSpace(text), "SELECT") }

// WriterSelects is how many SELECTs are prepared on the writer.
func (s *Store) WriterSelects() int { return s.wsel.count(isSelect) }

// WriterStmts and ReaderStmts are how many statements are prepared on the
// writer and on the readers.
func (s *Store) WriterStmts() int { return s.wsel.count(nil) }
func (s *Store) ReaderStmts() int { return s.rsel.count(nil) }

// count is how many statements are prepared whose text passes keep (nil:
// all).
func (l *lazyStmts) count(keep func(string) bool) int {
	n := 0
	for i := range l.stmts {
		if l.stmts[i].Load() != nil && (keep == nil || keep(l.text[i])) {
			n++
		}
	}
	return n
}

// PingIn runs the ping query in tx.
func (s *Store) PingIn(ctx context.Context, tx *sql.Tx) error {
	var one int
	return s.row(ctx, tx, qPing).Scan(&one)
}

// Check compiles texts as Open checks the store's queries.
func (s *Store) Check(ctx context.Context, texts ...string) error { return s.check(ctx, texts) }
