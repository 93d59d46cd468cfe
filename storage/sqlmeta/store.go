package sqlmeta

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/packreg/packreg/storage"
)

// Options tune a Store beyond its Dialect.
type Options struct {
	// Reader, when set, serves read-only statements so reads never queue
	// behind the writer (SQLite: one writer connection, many readers).
	Reader *sql.DB
	// GroupCommit runs concurrent writes in one transaction, each in its own
	// savepoint, so N waiting writers pay one commit (one fsync) instead of
	// N. Only worth it when writes are serialised anyway (SQLite).
	GroupCommit bool
	// MaxBatch caps the writes sharing one transaction (default 64), which
	// bounds the latency a write can add to the others.
	MaxBatch int
	// Prepare keeps every query prepared on each pool, so SQLite does not
	// parse SQL on every call (half the cost of a point read). Not for pgx:
	// it caches prepared statements per connection by itself.
	Prepare bool
	// OnClose runs after both pools are closed (to close a pgxpool, say).
	OnClose func()
	// Optimize, when set, keeps the planner's statistics: run on the
	// writer at open, every OptimizeEvery (0: DefaultOptimizeEvery) and
	// before close (optimize.go).
	Optimize      string
	OptimizeEvery time.Duration
	// OptimizeStats and OptimizeReload, with Optimize: a query answering
	// one text that differs when a run changed the statistics, and the
	// statements (one transaction on the writer) after which every
	// connection reads them again. A periodic run that changed them runs
	// OptimizeReload; empty: none.
	OptimizeStats, OptimizeReload string
	// BodyCache, when above 0, keeps up to this many bytes of what pulls
	// read (bodycache.go). Only for a database no one else writes: the
	// cache learns of this store's writes alone (SQLite, one process).
	BodyCache int
}

// Query is one statement of the store, written once with ? placeholders
// and {{tokens}}. Queries are package variables so New can translate (and
// check) all of them up front: a typo fails Open, not a request.
type Query struct {
	idx  int
	text string
}

var queries []*Query

func query(text string) *Query {
	q := &Query{idx: len(queries), text: text}
	queries = append(queries, q)
	return q
}

// queriesUpTo registers text(1) to text(n): a statement for each count of
// rows (or values) it takes, so that a few of them cost one round trip,
// not one each. The result is indexed by the count minus one.
func queriesUpTo(n int, text func(int) string) []*Query {
	out := make([]*Query, n)
	for i := range out {
		out[i] = query(text(i + 1))
	}
	return out
}

// Store implements storage.Store, every role of the metadata store, over
// database/sql.
type Store struct {
	w, r *sql.DB
	d    Dialect
	opts Options
	text []string // Query.idx -> this dialect's SQL
	// auditLast: the audit inserts that set the head too (auditLastTexts).
	auditLast []string
	// linkQueue: a blob link and its events' queue rows in one statement
	// (leadTexts), on a dialect with WritableCTE.
	linkQueue []string
	// wsel and rsel: the statements prepared on the writer and on the
	// readers (Options.Prepare), each on its first use there (stmts.go).
	wsel, rsel lazyStmts
	closed     atomic.Bool
	once       sync.Once
	// writes counts the writes that committed (Writes).
	writes atomic.Int64

	// Listeners of committed events (OnEvents).
	lmu       sync.Mutex
	listeners []func(context.Context)
	// auditInline: writes append their events' audit records themselves
	// (AuditInline) instead of queueing them for the audit consumer.
	auditInline atomic.Bool
	// auditHeld counts this store's transactions at the chain head (inline
	// appenders and drains), inflight its writes under way, when they
	// choose between appending inline and queueing (auditturn.go);
	// drains take turns.
	auditHeld atomic.Int64
	inflight  atomic.Int64
	drains    drainTurns
	// behind: the drainer that records what writes queued for the trail
	// behind their answer (drainbehind.go).
	behind behindDrainer
	// head: the chain head this store's last append left (auditcas.go).
	head knownHead

	// bodies: what pulls read, when Options.BodyCache (bodycache.go).
	bodies *bodyCache

	// obs, when set (ObserveOps), times every statement and commit.
	obs atomic.Pointer[storage.OpObserver]

	// Group commit: writers hand ops to one loop goroutine, unless one is
	// alone (group.go). wmu is held by whoever runs a write transaction,
	// the loop or a lone writer, and for good by Close; writers counts
	// the writes in submit.
	ops      chan *writeOp
	quit     chan struct{}
	loopDone chan struct{}
	wmu      sync.Mutex
	writers  atomic.Int64

	// optStop ends optimizeLoop, which closes optDone.
	optStop, optDone chan struct{}
	// readerStats: OptimizeStats' answer when the readers last loaded the
	// statistics (at open, or the last reload that committed); wmu.
	readerStats string

	// relaxed: the writer connection may commit without waiting for the
	// disk (beginTx).
	relaxed atomic.Bool

	// repos: the ids of repositories seen committed (ensureRepo).
	repos repoIDs

	// tagQueue: a tag's upsert with its events' queue rows, in one
	// statement (leadTexts), on a dialect with WritableCTE.
	tagQueue []string
	// one: the statements of PutManifest in one (manifestone.go).
	one oneTexts
	// takeBump: a drain's events taken and the head bumped in one
	// statement (takeBumpText), on a dialect with WritableCTE.
	takeBump string
	// bumpBehind: an inline append's bump of the head, unless events
	// wait for the trail (bumpBehindText), on a dialect with WritableCTE.
	bumpBehind string
	// takePageBump: a page of a direct append's queue taken and the head
	// bumped in one statement (takePageBumpText), on a dialect with
	// WritableCTE.
	takePageBump string
}

var (
	_ storage.Store         = (*Store)(nil)
	_ storage.Pinger        = (*Store)(nil)
	_ storage.OpsObservable = (*Store)(nil)
	_ storage.InlineAuditor = (*Store)(nil)
)

// New migrates db to the current schema and returns a store over it. The
// store then owns db (and opts.Reader): Close closes them. On error they
// are still the caller's to close.
func New(ctx context.Context, db *sql.DB, d Dialect, opts Options) (*Store, error) {
	if d.Classify == nil {
		d.Classify = func(error) ErrorClass { return ClassOther }
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 64
	}
	s := &Store{w: db, r: db, d: d, opts: opts}
	s.bodies = newBodyCache(opts.BodyCache, &s.writes)
	if opts.Reader != nil {
		s.r = opts.Reader
	}
	if err := s.migrate(ctx); err != nil {
		return nil, s.fail("migrate", err)
	}
	// Before prepare: the readers load the statistics with the schema.
	if opts.Optimize != "" {
		if err := s.optimize(ctx); err != nil {
			return nil, err
		}
		s.readerStats = s.stats(ctx)
	}
	s.text = make([]string, len(queries))
	for i, q := range queries {
		s.text[i] = s.sql(q.text)
	}
	s.auditLast = s.auditLastTexts()
	s.linkQueue = s.leadTexts(qLinkBlob)
	s.tagQueue = s.leadTexts(qUpsertTag)
	s.takeBump = s.takeBumpText()
	s.bumpBehind = s.bumpBehindText()
	s.takePageBump = s.takePageBumpText()
	if opts.Prepare {
		if err := s.prepare(ctx); err != nil {
			s.closeStmts()
			return nil, s.fail("prepare", err)
		}
	}
	if opts.Optimize != "" {
		s.optStop, s.optDone = make(chan struct{}), make(chan struct{})
		go s.optimizeLoop(s.optStop, s.optDone)
	}
	if opts.GroupCommit {
		s.ops = make(chan *writeOp)
		s.quit = make(chan struct{})
		s.loopDone = make(chan struct{})
		go s.groupLoop()
	}
	return s, nil
}

// Close stops the writer and closes the pools. Calling it twice is harmless.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		s.closed.Store(true)
		s.stopBehind() // its drains are writes
		if s.optStop != nil {
			close(s.optStop)
			<-s.optDone
		}
		if s.quit != nil {
			close(s.quit)
			<-s.loopDone
			// Wait for a lone writer's transaction; never unlocked, so no
			// write starts on the pools being closed.
			s.wmu.Lock()
		}
		if s.opts.Optimize != "" {
			err = s.optimize(context.Background())
		}
		s.closeStmts()
		if s.r != s.w {
			err = errors.Join(err, s.r.Close())
		}
		err = errors.Join(err, s.w.Close())
		if s.opts.OnClose != nil {
			s.opts.OnClose()
		}
	})
	return err
}

var qPing = query(`SELECT 1`)

// Ping is storage.Pinger: one query, through the readers' pool that every
// request reads with, for readiness probes. An outage wraps
// storage.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.fail("ping", s.row(ctx, s.r, qPing).Scan(&one))
}

// DB returns the writer pool, for tests and tools that inspect the schema.
func (s *Store) DB() *sql.DB { return s.w }

// ReadDB is the pool reads go through: Options.Reader, else DB.
func (s *Store) ReadDB() *sql.DB { return s.r }

// sql turns shared SQL text into this dialect's.
func (s *Store) sql(q string) string { return s.d.rebind(s.d.expand(q)) }

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// stmt returns q's prepared statement for where it runs (a pool or a
// transaction), or nil when statements are not prepared.
func (s *Store) stmt(ctx context.Context, on querier, q *Query) *sql.Stmt {
	if !s.opts.Prepare {
		return nil
	}
	tx, inTx := on.(*sql.Tx)
	switch {
	case on == s.r && on != s.w:
		return s.rsel.get(ctx, q.idx, true) // the readers hold no transaction
	case on != s.w && !inTx:
		return nil
	}
	st := s.wsel.get(ctx, q.idx, !inTx)
	if st == nil {
		return nil
	}
	if inTx {
		return tx.StmtContext(ctx, st)
	}
	return st
}

// ObserveOps is storage.OpsObservable: every statement ("query" or
// "exec", the round trip to the database) and every commit ("commit") is
// reported to fn.
func (s *Store) ObserveOps(fn storage.OpObserver) { s.obs.Store(&fn) }

// observe reports one statement to the observer, if any.
func (s *Store) observe(op string, start time.Time, err error) {
	if fn := s.obs.Load(); fn != nil {
		(*fn)(op, time.Since(start), err)
	}
}

// commit commits tx, reporting it.
func (s *Store) commit(tx *sql.Tx) error {
	start := time.Now()
	err := tx.Commit()
	s.bodies.wrote()
	s.observe("commit", start, err)
	s.wsel.prepareWanted(context.Background())
	return err
}

func (s *Store) exec(ctx context.Context, on querier, q *Query, args ...any) (int64, error) {
	var (
		res sql.Result
		err error
	)
	start := time.Now()
	defer func() { s.observe("exec", start, err) }()
	if st := s.stmt(ctx, on, q); st != nil {
		res, err = st.ExecContext(ctx, args...)
	} else {
		res, err = on.ExecContext(ctx, s.text[q.idx], args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// execText is exec of a statement text built at open (a dialect's
// combined statements: Dialect.WritableCTE), not of a prepared Query.
func (s *Store) execText(ctx context.Context, on querier, text string, args ...any) (n int64, err error) {
	start := time.Now()
	defer func() { s.observe("exec", start, err) }()
	res, err := on.ExecContext(ctx, text, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// pointCtx is the context of a read of a few rows by an index (a tag, a
// manifest, a tags page), in an in-process database (Dialect.InProcess):
// one that cannot be cancelled. A cancellable context costs each query
// two goroutines and a channel (database/sql's watcher of the rows and
// the driver's interrupt watcher), more than such a read itself (manifest
// GET by tag), and a cancel would interrupt nothing that takes long. Over
// a network (PostgreSQL) the caller's context is kept: a database that
// stops answering must not hold a request that was given up.
func (s *Store) pointCtx(ctx context.Context) context.Context {
	if s.d.InProcess {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// row runs a query for one row. QueryRowContext has run the query when it
// returns (Scan only reads the row), and its Err is the query's error
// (sql.ErrNoRows comes from Scan, so a miss is not a failure here).
func (s *Store) row(ctx context.Context, on querier, q *Query, args ...any) *sql.Row {
	start := time.Now()
	var r *sql.Row
	if st := s.stmt(ctx, on, q); st != nil {
		r = st.QueryRowContext(ctx, args...)
	} else {
		r = on.QueryRowContext(ctx, s.text[q.idx], args...)
	}
	s.observe("query", start, r.Err())
	return r
}

func (s *Store) rows(ctx context.Context, on querier, q *Query, args ...any) (rs *sql.Rows, err error) {
	start := time.Now()
	defer func() { s.observe("query", start, err) }()
	if st := s.stmt(ctx, on, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return on.QueryContext(ctx, s.text[q.idx], args...)
}

// class sorts an error, adding the cases every driver shares.
func (s *Store) class(err error) ErrorClass {
	if c := s.d.Classify(err); c != ClassOther {
		return c
	}
	var ne net.Error
	switch {
	case s.closed.Load(),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, sql.ErrConnDone),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.As(err, &ne),
		// database/sql does not export its "database is closed" error.
		strings.Contains(err.Error(), "sql: database is closed"):
		return ClassUnavailable
	}
	return ClassOther
}

// fail maps a driver error to the storage contract: no rows is
// ErrNotFound, an outage is ErrUnavailable, errors already in storage terms
// and context errors pass through.
func (s *Store) fail(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrConflict),
		errors.Is(err, storage.ErrUnavailable), errors.Is(err, storage.ErrDigestMismatch):
		return err
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", op, storage.ErrNotFound)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s %s: %w", s.d.Name, op, err)
	}
	if s.class(err) != ClassOther {
		return fmt.Errorf("%s %s: %w: %w", s.d.Name, op, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("%s %s: %w", s.d.Name, op, err)
}

// txFunc is the body of one write. It must be safe to run again (retries)
// and must not keep tx.
type txFunc func(ctx context.Context, tx *sql.Tx) error

// write runs fn in a write transaction: grouped with other writers when
// group commit is on, otherwise alone with retries of lost races.
func (s *Store) write(ctx context.Context, op string, fn txFunc) error {
	return s.writeAs(ctx, op, fn, 0)
}

// writeRelaxed is write for a change that must survive a crash of the
// process but may be lost with the machine (Dialect.RelaxCommit): its
// commit does not wait for the disk unless it shares a transaction with
// a strict write.
func (s *Store) writeRelaxed(ctx context.Context, op string, fn txFunc) error {
	return s.writeAs(ctx, op, fn, writeRelaxed)
}

// writeFlags say how a write may be run.
type writeFlags uint8

const (
	// writeRelaxed: see Store.writeRelaxed.
	writeRelaxed writeFlags = 1 << iota
	// writeDefersAudit: the write touches the audit chain only through
	// recordEvents, so under group commit its records may go in with its
	// batch's (batchaudit.go).
	writeDefersAudit
)

func (s *Store) writeAs(ctx context.Context, op string, fn txFunc, flags writeFlags) error {
	relaxed := flags&writeRelaxed != 0
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return fmt.Errorf("%s %s: %w: store closed", s.d.Name, op, storage.ErrUnavailable)
	}
	if s.ops != nil {
		err := s.submit(ctx, fn, flags)
		if err == nil {
			s.writes.Add(1)
		}
		return s.fail(op, err)
	}
	return s.retried(ctx, op, func() error { return s.runTx(ctx, fn, relaxed) })
}

// retried runs one write, a transaction or a statement alone, until it
// did not lose a race inside the database, a few times at most.
func (s *Store) retried(ctx context.Context, op string, write func() error) error {
	const attempts = 5
	for i := 1; ; i++ {
		err := write()
		s.bodies.wrote()
		if err == nil {
			s.writes.Add(1)
		}
		if err == nil || i == attempts || ctx.Err() != nil || s.class(err) != ClassRetry {
			return s.fail(op, err)
		}
		// Back off a little, randomly, so the racers do not collide again.
		time.Sleep(time.Duration(rand.IntN(5*i)+1) * time.Millisecond)
	}
}

// Writes is how many writes (the write transactions callers asked for;
// group commit may share one database transaction among several) have
// committed since the store opened: what a request costs, for tests and
// figures.
func (s *Store) Writes() int64 { return s.writes.Load() }

func (s *Store) runTx(ctx context.Context, fn txFunc, relaxed bool) error {
	ctx, done := s.withHeadTurn(ctx)
	defer done()
	tx, err := s.beginTx(ctx, relaxed)
	if err != nil {
		return err
	}
	if err := fn(ctx, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return s.commit(tx)
}

// beginTx begins a write transaction whose commit is relaxed or strict
// (Dialect.RelaxCommit). SQLite refuses to change the setting inside a
// transaction and keeps it on the connection: it is switched before BEGIN
// (the writer pool is one connection) and tracked in s.relaxed, counted
// relaxed from before the switch is tried until a switch back succeeded,
// so a failed switch leaves the next strict write to try again, never to
// commit relaxed. PostgreSQL's SET LOCAL ends with the transaction.
func (s *Store) beginTx(ctx context.Context, relaxed bool) (*sql.Tx, error) {
	if s.d.StrictCommit != "" {
		switch {
		case relaxed && !s.relaxed.Load():
			s.relaxed.Store(true)
			if _, err := s.w.ExecContext(ctx, s.d.RelaxCommit); err != nil {
				return nil, err
			}
		case !relaxed && s.relaxed.Load():
			if _, err := s.w.ExecContext(ctx, s.d.StrictCommit); err != nil {
				return nil, err
			}
			s.relaxed.Store(false)
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	if relaxed && s.d.StrictCommit == "" && s.d.RelaxCommit != "" {
		if _, err := tx.ExecContext(ctx, s.d.RelaxCommit); err != nil {
			_ = tx.Rollback()
			return nil, err
		}
	}
	return tx, nil
}

// repoID returns the id of repo, or sql.ErrNoRows.
func (s *Store) repoID(ctx context.Context, q querier, repo string) (int64, error) {
	var id int64
	err := s.row(ctx, q, qRepoID, repo).Scan(&id)
	return id, err
}

// ensureRepo returns the id of repo, creating the repository first if
// needed. An id the store has seen committed is not read again (repoIDs):
// the caller passes it to s.repos.remember once its write returns.
func (s *Store) ensureRepo(ctx context.Context, tx *sql.Tx, repo string) (int64, error) {
	if id, ok := s.repos.get(repo); ok {
		return id, nil
	}
	id, err := s.repoID(ctx, tx, repo)
	if !errors.Is(err, sql.ErrNoRows) {
		return id, err
	}
	// DO NOTHING: a concurrent transaction may create it first (Postgres);
	// the SELECT below then sees its row once it commits.
	if _, err := s.exec(ctx, tx, qCreateRepo, repo); err != nil {
		return 0, err
	}
	return s.repoID(ctx, tx, repo)
}

// nanos and fromNanos store times as Unix nanoseconds: portable, exact and
// cheap to compare; 0 stands for the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

var (
	qRepoID     = query(`SELECT id FROM repositories WHERE name = ?`)
	qCreateRepo = query(`INSERT INTO repositories (name) VALUES (?) ON CONFLICT (name) DO NOTHING`)
)
