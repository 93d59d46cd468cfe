package sqlmeta

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// ErrorClass says what a driver error means for the caller.
type ErrorClass int

const (
	// ClassOther: a bug, a constraint violation or bad input; returned as is.
	ClassOther ErrorClass = iota
	// ClassUnavailable: the database is down, closed, full or overloaded. The
	// request may succeed later, so it becomes storage.ErrUnavailable (503).
	ClassUnavailable
	// ClassRetry: the transaction lost a race inside the database
	// (serialization failure, deadlock). Our transactions are pure functions
	// of their inputs, so the store reruns them a few times before giving up
	// with storage.ErrUnavailable.
	ClassRetry
)

// Dialect is everything that differs between the SQL databases. The SQL
// text itself is shared: write queries with `?` placeholders and the schema
// with the {{...}} type tokens below.
type Dialect struct {
	// Name is for logs and error messages ("sqlite", "postgres").
	Name string
	// Numbered placeholders: `?` is rewritten to $1, $2... (PostgreSQL).
	Numbered bool
	// Types fills the schema tokens:
	//   {{id}}    auto-assigned integer primary key
	//   {{int}}   64-bit integer
	//   {{bytes}} binary string
	//   {{name}}  text compared and ordered byte by byte (repository,
	//             tag and digest columns: OCI pagination is in byte order)
	Types map[string]string
	// NowNanos is an SQL expression for the database clock in Unix
	// nanoseconds. Leases use it so that replicas with skewed clocks agree
	// on who holds a lease.
	NowNanos string
	// LockMigrations, when set, runs first in every migration transaction
	// so that replicas starting together apply each step once.
	LockMigrations string
	// Classify sorts driver errors (never nil errors).
	Classify func(error) ErrorClass
	// RowLocks: the database locks rows a SELECT reads when asked
	// ({{forupdate}}, {{forshare}}; PostgreSQL). Without it (SQLite) the
	// tokens are empty: its write transactions are serial anyway.
	RowLocks bool
	// AuditLockWait, when set, bounds how long a write that appends its
	// audit records inline waits for the chain head's lock (PostgreSQL:
	// SET LOCAL lock_timeout); LockTimedOut recognises the error of a wait
	// cut short. The write then queues its events for the audit consumer
	// instead, in its own transaction still, and commits: a head held for
	// long (a large drain, an operator's lock) must not stall every write.
	// Empty: the write holds the head's lock already (SQLite: its one
	// write lock).
	AuditLockWait string
	LockTimedOut  func(error) bool
	// LockTimeout, when set, is the statement that bounds the lock waits
	// of the rest of a transaction to d (PostgreSQL: SET LOCAL
	// lock_timeout): a write that appends its own records waits at a held
	// chain head that long, then fails (503) rather than hold its
	// connection for as long as the head is held. Nil: nothing else holds
	// the head while a write runs (SQLite).
	LockTimeout func(d time.Duration) string
	// WritableCTE: a WITH clause may hold an INSERT (PostgreSQL), so an
	// append to the audit trail inserts its records and moves the chain's
	// head in one statement, one round trip less while the head's lock,
	// which every writer waits for, is held. SQLite has no such clause
	// and no round trips.
	WritableCTE bool
	// RelaxCommit, run first in a write transaction whose changes need
	// not survive a crash of the machine (only of the process), lets its
	// commit skip waiting for the disk: an upload's offset after a PATCH
	// (see UpdateUpload). StrictCommit undoes it for the next transaction
	// when the setting belongs to the connection (SQLite's PRAGMA, which
	// beginTx runs before BEGIN: the writer pool must be one connection);
	// empty when RelaxCommit runs inside the transaction and ends with it
	// (PostgreSQL's SET LOCAL).
	RelaxCommit, StrictCommit string
	// InProcess: the database runs inside this process (SQLite), so a
	// read waits on nothing but the local disk and memory, never on a
	// network. Point reads (pointCtx) then run under a context that
	// cannot be cancelled.
	InProcess bool
	// CopiesSubqueryRows: an aggregate over a subquery copies every value
	// the subquery yields (SQLite runs it as a co-routine: a malloc, a
	// copy and a free per value), so a tags page is aggregated straight
	// from its index range instead, bounded above by the page's n-th name
	// (qListTagsRange: two walks of the range, each cheaper than the
	// copies). PostgreSQL streams the subquery's rows, and a second walk
	// costs it more than it saves.
	CopiesSubqueryRows bool
	// SerialWrites: write transactions never overlap, each one begun
	// holding the database's one write lock (SQLite, _txlock=immediate),
	// so a read inside one sees every write committed before it and none
	// after. LinkBlobConfirmed relies on it (storage.LinkConfirmer).
	SerialWrites bool
	// Pipeline, when set, runs stmts in order on conn, a connection of
	// the writer pool as database/sql's Conn.Raw gives it, sent together:
	// one round trip for all (PostgreSQL's pipeline mode). ran is how many
	// succeeded; the first that fails ends the run, err is its error, and
	// the ones after it do not run. A blob link is two round trips with
	// it, not seven (linkpipe.go).
	Pipeline func(ctx context.Context, conn any, stmts []Piped) (ran int, err error)
	// Steps are this database's own migration statements, by step: they
	// run after the step's shared statements, in its transaction, for
	// what the shared SQL cannot say (SQLite rebuilding a table to change
	// how it assigns ids, which PostgreSQL never needs). Append only, as
	// the shared steps.
	Steps map[int][]string
}

// rebind rewrites `?` placeholders for dialects that number them. Queries
// in this package never contain a literal question mark.
func (d *Dialect) rebind(q string) string {
	if !d.Numbered || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// expand fills schema type tokens and the {{now}} clock expression.
func (d *Dialect) expand(q string) string {
	if !strings.Contains(q, "{{") {
		return q
	}
	update, share := "", ""
	if d.RowLocks {
		update, share = " FOR UPDATE", " FOR SHARE"
	}
	pairs := []string{"{{now}}", d.NowNanos, "{{forupdate}}", update, "{{forshare}}", share}
	for k, v := range d.Types {
		pairs = append(pairs, "{{"+k+"}}", v)
	}
	return strings.NewReplacer(pairs...).Replace(q)
}
