package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/packreg/packreg/storage/sqlmeta"
)

// pipeliner is Dialect.Pipeline for one pool (Open): stmts as one pgx
// batch (one Sync, one round trip) on the connection of a database/sql
// Conn.Raw.
//
// A batch prepares the statements its connection has not seen before
// running them, outside their transaction and its lock_timeout; and
// parsing an UPDATE of audit_head takes that table's lock, which a holder
// of the whole head (LOCK TABLE: an operator) keeps, so the link would
// wait for it for good. The statements with parameters, the ones that
// name tables, are prepared first in a transaction of their own under
// lockWait (Dialect.AuditLockWait), once per connection: prepared
// records them, by connection, until the pool closes it (forget).
type pipeliner struct {
	lockWait string
	prepared sync.Map // *pgx.Conn -> map[string]bool, used by the conn's holder only
}

func (p *pipeliner) run(ctx context.Context, conn any, stmts []sqlmeta.Piped) (ran int, err error) {
	sc, ok := conn.(*stdlib.Conn)
	if !ok {
		return 0, fmt.Errorf("postgres: a pipeline on a %T", conn)
	}
	c := sc.Conn()
	if err := p.prepare(ctx, c, stmts); err != nil {
		return 0, err
	}
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(stmts))}
	for _, st := range stmts {
		b.Queue(st.SQL, st.Args...)
	}
	br := c.SendBatch(ctx, b)
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

// prepare prepares on c the statements of stmts with parameters that it
// has not yet (see pipeliner).
func (p *pipeliner) prepare(ctx context.Context, c *pgx.Conn, stmts []sqlmeta.Piped) error {
	v, ok := p.prepared.Load(c)
	if !ok {
		v, _ = p.prepared.LoadOrStore(c, map[string]bool{})
	}
	done := v.(map[string]bool)
	var missing []string
	for _, st := range stmts {
		if len(st.Args) > 0 && !done[st.SQL] {
			missing = append(missing, st.SQL)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	// Within the link's own transaction (its second pipeline), its
	// lock_timeout bounds the wait already, and a ROLLBACK would end it.
	own := c.PgConn().TxStatus() == 'I'
	if own {
		if err := c.PgConn().Exec(ctx, "BEGIN; "+p.lockWait).Close(); err != nil {
			return err
		}
	}
	var err error
	for _, sql := range missing {
		if _, err = c.Prepare(ctx, sql, sql); err != nil {
			break
		}
		done[sql] = true
	}
	if own {
		if rerr := c.PgConn().Exec(ctx, "ROLLBACK").Close(); err == nil {
			err = rerr
		}
	}
	return err
}

// forget is the pool's BeforeClose: c's statements go with it.
func (p *pipeliner) forget(c *pgx.Conn) { p.prepared.Delete(c) }
