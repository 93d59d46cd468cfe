package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/storage/sqlite"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// statsFixture is a store over a database that also holds a table of the
// test's own, t, whose two indexes swap selectivity when it grows 50
// times (grow, which is also what makes optimize analyze it again): the
// plan of one reader connection kept open throughout shows which
// statistics that reader has loaded. Optimize runs every 20 ms.
type statsFixture struct {
	t      *testing.T
	s      *sqlmeta.Store
	raw, r *sql.DB
}

// newStatsFixture runs setup on the database, then opens a store on it
// whose statistics reload is reload.
func newStatsFixture(t *testing.T, reload string, setup ...string) *statsFixture {
	path := filepath.Join(t.TempDir(), "meta.db")
	open := func(pragmas string) *sql.DB {
		t.Helper()
		db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)"+pragmas)
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}
	f := &statsFixture{t: t, raw: open("&_pragma=journal_mode(WAL)")}
	// 100 rows: a takes two values, b is unique, so b is the index to use.
	f.exec(`CREATE TABLE t (a INTEGER, b INTEGER); CREATE INDEX ta ON t (a); CREATE INDEX tb ON t (b)`)
	f.exec(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100) INSERT INTO t SELECT x % 2, x FROM c`)
	for _, q := range setup {
		f.exec(q)
	}
	f.exec(`ANALYZE`)
	w := open("&_pragma=journal_mode(WAL)&_txlock=immediate")
	f.r = open("&_pragma=query_only(1)")
	s, err := sqlmeta.New(t.Context(), w, sqlite.Dialect, sqlmeta.Options{GroupCommit: true, Prepare: true, Reader: f.r,
		Optimize: "PRAGMA optimize=0x10002", OptimizeEvery: 20 * time.Millisecond,
		OptimizeStats: sqlite.OptimizeStats, OptimizeReload: reload})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f.s = s
	if p := f.plan(); !strings.Contains(p, "INDEX tb") {
		t.Fatalf("reader's plan before: %q, want index tb", p)
	}
	return f
}

func (f *statsFixture) exec(q string) {
	f.t.Helper()
	if _, err := f.raw.ExecContext(f.t.Context(), q); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
}

// plan is the reader's plan of a query on t: index tb before grow, ta
// once the reader has the statistics of after.
func (f *statsFixture) plan() string {
	f.t.Helper()
	ctx := f.t.Context()
	// The query first: a connection checks the schema cookie when a
	// statement starts its transaction, which EXPLAIN does not.
	var n, id, parent, unused int
	var detail string
	if err := f.r.QueryRowContext(ctx, `SELECT count(*) FROM t WHERE a = 1500 AND b = 1`).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	if err := f.r.QueryRowContext(ctx, `EXPLAIN QUERY PLAN SELECT * FROM t WHERE a = 1500 AND b = 1`).Scan(&id, &parent, &unused, &detail); err != nil {
		f.t.Fatal(err)
	}
	return detail
}

// stat is the statistics of index ta.
func (f *statsFixture) stat() string {
	f.t.Helper()
	var v string
	if err := f.raw.QueryRowContext(f.t.Context(), `SELECT stat FROM sqlite_stat1 WHERE idx = 'ta'`).Scan(&v); err != nil {
		f.t.Fatal(err)
	}
	return v
}

// grow adds 5,000 rows to t (a all but unique, b mostly 1) and waits until
// an optimize run has analyzed it again.
func (f *statsFixture) grow(deadline time.Time) {
	f.t.Helper()
	old := f.stat()
	f.exec(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000) INSERT INTO t SELECT 1000 + x, 1 FROM c`)
	for f.stat() == old {
		if time.Now().After(deadline) {
			f.t.Fatal("optimize did not analyze t again")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitPlan waits until the reader's plan uses index ta.
func (f *statsFixture) waitPlan(deadline time.Time) {
	f.t.Helper()
	for p := f.plan(); !strings.Contains(p, "INDEX ta"); p = f.plan() {
		if time.Now().After(deadline) {
			f.t.Fatalf("reader's plan after optimize: %q, want index ta (statistics of ta %q)", p, f.stat())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
