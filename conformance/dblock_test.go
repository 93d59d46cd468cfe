package conformance

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The kill -9 tests stop the server at points no request reaches on its
// own: after one step of a change is durable, before the next. They hold a
// lock on the server's database that stalls the next step's write, wait
// until the first step shows (a file, an object, an answer), then kill.
// The lock proves the server is in between: it cannot have got past it.

// lockSQLiteWrites takes SQLite's write lock on the database at path (reads
// go on, WAL lets them) and returns its release. The server waits up to
// its busy timeout (10s) for the lock, ample for the test to kill it.
func lockSQLiteWrites(t testing.TB, path string) (release func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err == nil {
		_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	}
	if err != nil {
		db.Close()
		t.Fatalf("locking %s: %v", path, err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			conn.ExecContext(context.Background(), "ROLLBACK")
			conn.Close()
			db.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// lockPostgresTables locks tables of the database at dsn against writes
// (EXCLUSIVE mode: plain reads go on) and returns the release.
func lockPostgresTables(t testing.TB, dsn string, tables ...string) (release func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", dsn, err)
	}
	tx, err := conn.Begin(ctx)
	if err == nil {
		_, err = tx.Exec(ctx, "LOCK TABLE "+strings.Join(tables, ", ")+" IN EXCLUSIVE MODE")
	}
	if err != nil {
		conn.Close(context.Background())
		t.Fatalf("locking %v: %v", tables, err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			tx.Rollback(context.Background())
			conn.Close(context.Background())
		})
	}
	t.Cleanup(release)
	return release
}
