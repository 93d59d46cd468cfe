package sqlmeta_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/storage/sqlite"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// TestFailedStatisticsReloadIsRetried: a periodic optimize that changed
// the statistics but whose reload failed leaves the readers on the old
// ones; the next run, which changes nothing more, still reloads them.
// The reload is gated by a trigger on a table of the test's own, so it
// fails until the test opens the gate (an update: neither a schema change
// nor a change of row count that would make optimize analyze anything).
func TestFailedStatisticsReloadIsRetried(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	ctx := t.Context()
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
	raw := open("&_pragma=journal_mode(WAL)")
	exec := func(q string) {
		t.Helper()
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// 100 rows: a takes two values, b is unique, so b is the index to use.
	exec(`CREATE TABLE t (a INTEGER, b INTEGER); CREATE INDEX ta ON t (a); CREATE INDEX tb ON t (b)`)
	exec(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100) INSERT INTO t SELECT x % 2, x FROM c`)
	exec(`CREATE TABLE gate (open INTEGER); INSERT INTO gate VALUES (0); CREATE TABLE reloads (n INTEGER);
		CREATE TRIGGER gated BEFORE INSERT ON reloads WHEN NOT EXISTS (SELECT 1 FROM gate WHERE open = 1)
		BEGIN SELECT RAISE(ABORT, 'gate closed'); END`)
	exec(`ANALYZE`)

	w := open("&_pragma=journal_mode(WAL)&_txlock=immediate")
	r := open("&_pragma=query_only(1)") // one reader connection, kept open throughout
	s, err := sqlmeta.New(ctx, w, sqlite.Dialect, sqlmeta.Options{GroupCommit: true, Prepare: true, Reader: r,
		Optimize: "PRAGMA optimize=0x10002", OptimizeEvery: time.Hour,
		OptimizeStats:  `SELECT coalesce(group_concat(tbl || coalesce(idx, '') || stat, ';'), '') FROM sqlite_stat1`,
		OptimizeReload: `INSERT INTO reloads VALUES (1); CREATE VIEW reload AS SELECT 1; DROP VIEW reload`})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	plan := func() string {
		t.Helper()
		// The query first: a connection checks the schema cookie when a
		// statement starts its transaction, which EXPLAIN does not.
		var n, id, parent, unused int
		var detail string
		if err := r.QueryRowContext(ctx, `SELECT count(*) FROM t WHERE a = 1500 AND b = 1`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if err := r.QueryRowContext(ctx, `EXPLAIN QUERY PLAN SELECT * FROM t WHERE a = 1500 AND b = 1`).Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		return detail
	}
	if p := plan(); !strings.Contains(p, "INDEX tb") {
		t.Fatalf("reader's plan before: %q, want index tb", p)
	}
	// 5,000 rows more: a is now all but unique, b mostly 1; optimize
	// analyzes t again (it grew 50 times), and the reload is refused.
	exec(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000) INSERT INTO t SELECT 1000 + x, 1 FROM c`)
	if err := s.OptimizeNow(ctx); err == nil || !strings.Contains(err.Error(), "gate closed") {
		t.Fatalf("the run with the gate closed: %v, want the reload refused", err)
	}
	if p := plan(); !strings.Contains(p, "INDEX tb") {
		t.Fatalf("reader's plan after a failed reload: %q, want still index tb", p)
	}
	exec(`UPDATE gate SET open = 1`) // no row more: optimize sees nothing new to analyze
	if err := s.OptimizeNow(ctx); err != nil {
		t.Fatal(err)
	}
	if p := plan(); !strings.Contains(p, "INDEX ta") {
		t.Fatalf("reader's plan after the next run: %q, want index ta (the failed reload tried again)", p)
	}
}
