package sqlmeta

import (
	"context"
	"database/sql"
)

// WriterSelects is how many SELECTs are prepared on the writer.
func (s *Store) WriterSelects() int {
	n := 0
	for i, text := range s.text {
		if isSelect(text) && (s.wstmt[i] != nil || s.wsel.stmts[i].Load() != nil) {
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
