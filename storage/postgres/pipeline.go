package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/packreg/packreg/storage/sqlmeta"
)

// pipeline is Dialect.Pipeline: stmts as one pgx batch (one Sync, one
// round trip; each statement prepared once per connection, as database/
// sql's queries are) on the connection of a database/sql Conn.Raw.
func pipeline(ctx context.Context, conn any, stmts []sqlmeta.Piped) (ran int, err error) {
	c, ok := conn.(*stdlib.Conn)
	if !ok {
		return 0, fmt.Errorf("postgres: a pipeline on a %T", conn)
	}
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(stmts))}
	for _, st := range stmts {
		b.Queue(st.SQL, st.Args...)
	}
	br := c.Conn().SendBatch(ctx, b)
	for i := range stmts {
		st := &stmts[i]
		if st.Scan != nil {
			err = br.QueryRow().Scan(st.Scan...)
		} else {
			tag, e := br.Exec()
			st.Tag, st.N, err = tag.String(), tag.RowsAffected(), e
		}
		if err != nil {
			br.Close()
			return i, err
		}
	}
	return len(stmts), br.Close()
}
