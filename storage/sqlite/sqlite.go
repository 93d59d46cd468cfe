package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/packreg/packreg/storage/sqlmeta"
)

// Dialect is SQLite's side of the shared schema and queries.
var Dialect = sqlmeta.Dialect{
	Name: "sqlite",
	Types: map[string]string{
		"id":    "INTEGER PRIMARY KEY", // the rowid: no extra index
		"int":   "INTEGER",
		"bytes": "BLOB",
		"name":  "TEXT COLLATE BINARY", // memcmp order, as OCI paginates
	},
	NowNanos:  "CAST(unixepoch('subsec') * 1000000000 AS INTEGER)",
	Classify:  classify,
	InProcess: true,
	// A tags page aggregated over a LIMIT subquery was a third slower.
	CopiesSubqueryRows: true,
	// NORMAL in WAL mode: the commit is in the WAL, which survives the
	// process; it reaches the disk with the next FULL commit or checkpoint.
	RelaxCommit:  "PRAGMA synchronous = NORMAL",
	StrictCommit: "PRAGMA synchronous = FULL",
	// One writer connection, every transaction begun IMMEDIATE (Open).
	SerialWrites: true,
	Steps: map[int][]string{
		// A consumer acknowledges events by id, perhaps late (a worker
		// that lost its lease acknowledges what its successor did), so
		// an id must name one event for good. A plain INTEGER PRIMARY KEY
		// takes the largest id + 1: once the newest event was
		// acknowledged, the next one got its id, and a late
		// acknowledgement deleted it unprocessed. AUTOINCREMENT never
		// goes back. SQLite cannot add it in place: a new table, the
		// pending rows keeping their ids.
		9: {
			`CREATE TABLE event_queue_new (
				id       INTEGER PRIMARY KEY AUTOINCREMENT,
				consumer {{name}} NOT NULL,
				at       {{int}} NOT NULL,
				actor    TEXT NOT NULL,
				action   TEXT NOT NULL,
				target   TEXT NOT NULL,
				digest   TEXT NOT NULL,
				details  TEXT NOT NULL
			)`,
			`INSERT INTO event_queue_new (id, consumer, at, actor, action, target, digest, details)
				SELECT id, consumer, at, actor, action, target, digest, details FROM event_queue`,
			`DROP TABLE event_queue`,
			`ALTER TABLE event_queue_new RENAME TO event_queue`,
			`CREATE INDEX event_queue_consumer ON event_queue (consumer, id)`,
		},
		// A rowid table keeps its rows in a b-tree of its own and the
		// primary key (repo_id, digest) in an index beside it: each link
		// (every blob push) wrote a page of both, and the WAL frame of
		// each, besides blobs_digest's. WITHOUT ROWID the rows live in
		// the primary key's b-tree: a page, and its frame, fewer per link.
		17: {
			`CREATE TABLE blobs_new (
				repo_id {{int}} NOT NULL REFERENCES repositories (id),
				digest  {{name}} NOT NULL,
				size    {{int}} NOT NULL,
				created {{int}} NOT NULL,
				linked  {{int}} NOT NULL DEFAULT 0,
				PRIMARY KEY (repo_id, digest)
			) WITHOUT ROWID`,
			`INSERT INTO blobs_new (repo_id, digest, size, created, linked)
				SELECT repo_id, digest, size, created, linked FROM blobs`,
			`DROP TABLE blobs`,
			`ALTER TABLE blobs_new RENAME TO blobs`,
			`CREATE INDEX blobs_digest ON blobs (digest)`,
		},
		// The same for manifest_first_push, which every manifest PUT
		// writes a row of at its digest's random place: 0.2 WAL frames a
		// PUT fewer at 16 clients (BenchmarkWALFrames). tags, rebuilt so
		// too, wrote no fewer: its rowid table only ever grew at the end.
		18: {
			`CREATE TABLE manifest_first_push_new (
				repo   {{name}} NOT NULL,
				digest {{name}} NOT NULL,
				at     {{int}} NOT NULL,
				PRIMARY KEY (repo, digest)
			) WITHOUT ROWID`,
			`INSERT INTO manifest_first_push_new (repo, digest, at)
				SELECT repo, digest, at FROM manifest_first_push`,
			`DROP TABLE manifest_first_push`,
			`ALTER TABLE manifest_first_push_new RENAME TO manifest_first_push`,
		},
	},
}

// busyMillis is how long a connection waits for a lock held by another
// connection or process (a packreg gc run, say) before SQLITE_BUSY. Within
// one process the single writer connection means writers never meet.
const busyMillis = 10000

// readerCacheKiB is each reader connection's page cache. SQLite's default,
// 2 MiB a connection, filled the pool's caches with copies of pages the
// kernel's page cache holds anyway: 8 MiB of the server's peak RSS in a
// 10,000-version registry (bench, packs suite). A reader's cache is also
// dropped whenever another connection writes (WAL), so on a registry
// taking pushes it holds little for long; the hot interior pages of the
// indexes fit in 512 KiB.
const readerCacheKiB = 512

// writerCacheKiB is the writer's page cache, half SQLite's default 2 MiB.
// The writer is the only one, so its cache stays valid across its
// transactions, and a write touches the interior pages of a few indexes
// and their leaves near the newest rows: 1 MiB holds those in a
// 10,000-version registry. The other half was resident memory that
// modernc's allocator keeps once touched (bench, packs and manifests
// suites: VmHWM 3 MiB lower with a reader fewer, manifest PUT and GET
// rates at 16 clients unchanged within the noise).
const writerCacheKiB = 1024

// bodyCacheBytes bounds the manifests pulls keep in memory
// (sqlmeta.Options.BodyCache): a thousand image manifests of a few KiB.
// The cache is right only because this process is the database's one
// writer, which a SQLite registry is (replicas need PostgreSQL).
const bodyCacheBytes = 4 << 20

// readers is the size of the reader pool. SQLite here is Go code, so a
// read is CPU work: a connection per core, and one more so that a long
// read (a 1,000-item page) does not hold up the point reads of pulls.
// Each connection has its own page cache, parsed schema and prepared
// statements; twice the cores (4 on a 2-core machine) held a fourth
// connection's worth of them resident for no measurable read rate.
func readers() int { return runtime.GOMAXPROCS(0) + 1 }

// optimizeStats reads the statistics a PRAGMA optimize may change, and
// optimizeReload makes every connection read them again: creating and
// dropping a view changes the schema cookie, and a connection that sees a
// new cookie reloads the schema and the statistics with it before its
// next statement (prepared statements are prepared again).
const (
	optimizeStats = `SELECT coalesce(group_concat(s, char(10)), '') FROM
		(SELECT tbl || ' ' || coalesce(idx, '') || ' ' || stat AS s FROM sqlite_stat1 ORDER BY tbl, idx)`
	optimizeReload = `CREATE VIEW packreg_reload_statistics AS SELECT 1; DROP VIEW packreg_reload_statistics`
)

// Open opens (creating if needed) the database file at path and migrates it.
//
// Writes go through one connection: SQLite allows one writer at a time, and
// queueing in Go is cheaper and fairer than BUSY retries inside SQLite. The
// store groups concurrent writes into one transaction (one fsync). Reads use
// a pool of query-only connections that WAL lets run beside the writer.
//
// synchronous=FULL: a write that returned survives power loss. NORMAL
// would save the WAL fsync of each commit (about a tenth of a small
// push's CPU) but syncs only at checkpoints, so after a power loss or an
// OS crash a commit already answered 201 may roll back: a client told its
// manifest is stored would find it gone. FULL stays.
//
// Commits sync with fdatasync(2), as SQLite built by a distribution does
// (modernc's transpiled library defaults to fsync; sqlite.Fdatasync is its
// process-wide switch). fdatasync still writes the size and all a read
// needs, so a commit is as durable; it skips the WAL's timestamps, which
// fsync wrote with every commit: a second synchronous write, the WAL's
// inode, for each 1 KiB blob push from one client.
//
// temp_store=MEMORY on the writer: group commit runs each write in a
// SAVEPOINT, and SQLite's statement journal for those spills to a
// temporary file past 64 KiB, so a batch of 16 manifest PUTs wrote every
// page it touched again through pwrite (a fifth of the CPU of a PUT at 16
// clients). In memory it costs at most what one batch touches. Readers
// keep the default: their sorts may be large.
//
// path ":memory:" gives a private in-memory database on one connection
// (reads and writes share it): for tests only.
func Open(ctx context.Context, path string) (*sqlmeta.Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: unusable database path %q", path)
	}
	// Unavailable (macOS, Windows): SQLite keeps its own sync there.
	_, _ = sqlite.Fdatasync(true)
	pragmas := func(extra ...string) string {
		q := url.Values{}
		for _, p := range append([]string{fmt.Sprintf("busy_timeout(%d)", busyMillis), "foreign_keys(1)"}, extra...) {
			q.Add("_pragma", p)
		}
		return path + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite", pragmas("journal_mode(WAL)", "synchronous(FULL)", "temp_store(MEMORY)", fmt.Sprintf("cache_size(-%d)", writerCacheKiB))+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// PRAGMA optimize as SQLite advises for long-lived connections; 0x10000
	// looks at every table, not only those this connection queried: the
	// writer is the one that may write statistics, and the readers run
	// most queries.
	opts := sqlmeta.Options{GroupCommit: true, Prepare: true, Optimize: "PRAGMA optimize=0x10002",
		OptimizeStats: optimizeStats, OptimizeReload: optimizeReload, BodyCache: bodyCacheBytes}
	// An in-memory database exists once per connection: it cannot have a
	// separate reader pool.
	if path != ":memory:" {
		r, err := sql.Open("sqlite", pragmas("query_only(1)", fmt.Sprintf("cache_size(-%d)", readerCacheKiB)))
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		r.SetMaxOpenConns(readers())
		r.SetMaxIdleConns(readers())
		r.SetConnMaxLifetime(0)
		r.SetConnMaxIdleTime(0)
		opts.Reader = r
	}
	s, err := sqlmeta.New(ctx, w, Dialect, opts)
	if err != nil {
		w.Close()
		if opts.Reader != nil {
			opts.Reader.Close()
		}
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return s, nil
}

func classify(err error) sqlmeta.ErrorClass {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return sqlmeta.ClassOther
	}
	switch se.Code() & 0xff { // the primary code; extended codes add detail above it
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, // another process held the lock past busy_timeout
		sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_NOMEM,
		sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_READONLY:
		return sqlmeta.ClassUnavailable
	}
	return sqlmeta.ClassOther
}
