// Package teststores opens the embedded default stores (disk blobs, SQLite
// metadata) in a test's temp dir: the real thing a user runs, for the
// in-process tests of registry, pack, attest, mirror and cmd. Only tests
// import it.
package teststores

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql's "pgx", for the schema

	"github.com/packreg/packreg/storage/fs"
	"github.com/packreg/packreg/storage/postgres"
	"github.com/packreg/packreg/storage/sqlite"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// Open returns a fresh disk blob store and SQLite metadata store under
// t.TempDir(), and the directory. The metadata store is closed at cleanup.
func Open(t testing.TB) (*fs.Store, *sqlmeta.Store, string) {
	t.Helper()
	dir := t.TempDir()
	blobs, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sqlite.Open(t.Context(), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	return blobs, meta, dir
}

// PostgresSchema creates a schema of its own on $PACKREG_TEST_POSTGRES,
// dropped at cleanup, and returns a DSN whose search_path is it: an empty
// database without paying for CREATE DATABASE. Without the variable it
// skips, or fails under CI.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("PACKREG_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("PACKREG_TEST_POSTGRES is empty under CI: start PostgreSQL with .ci/pg.sh")
		}
		t.Skip("PACKREG_TEST_POSTGRES not set (eval \"$(bash .ci/pg.sh)\" to run these)")
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	schema := "metatest_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("PACKREG_TEST_POSTGRES must be a URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// OpenPostgres returns a fresh disk blob store and a PostgreSQL metadata
// store in a schema of its own (PostgresSchema).
func OpenPostgres(t testing.TB) (*fs.Store, *sqlmeta.Store, string) {
	t.Helper()
	dsn := PostgresSchema(t)
	dir := t.TempDir()
	blobs, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	return blobs, meta, dir
}

// ProcessCPU is the user and system CPU time of this process so far,
// for benchmarks that report CPU per operation (which a shared machine's
// load moves less than the rate).
func ProcessCPU(tb testing.TB) time.Duration {
	ru := rusage(tb)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ReportCPU starts counting this process's CPU and context switches;
// what it returns reports them per op (b.N): user-us/op, sys-us/op,
// vcsw/op and ivcsw/op. A shared machine's load moves them less than the
// rate, and a hand-off between goroutines shows as switches.
func ReportCPU(b *testing.B) func() {
	before := rusage(b)
	return func() {
		after := rusage(b)
		n := float64(b.N)
		b.ReportMetric(float64(after.Utime.Nano()-before.Utime.Nano())/1e3/n, "user-us/op")
		b.ReportMetric(float64(after.Stime.Nano()-before.Stime.Nano())/1e3/n, "sys-us/op")
		b.ReportMetric(float64(after.Nvcsw-before.Nvcsw)/n, "vcsw/op")
		b.ReportMetric(float64(after.Nivcsw-before.Nivcsw)/n, "ivcsw/op")
	}
}

func rusage(tb testing.TB) syscall.Rusage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return ru
}
