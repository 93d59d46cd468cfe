package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	msqlite "modernc.org/sqlite"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/metatest"
	"github.com/packreg/packreg/storage/sqlite"
	"github.com/packreg/packreg/storage/sqlmeta"
)

func TestMetadata(t *testing.T) {
	metatest.Run(t, func(t *testing.T) storage.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "meta.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// ":memory:" has a single connection for reads and writes; it must still
// pass, because tests elsewhere use it for speed.
func TestMetadataInMemory(t *testing.T) {
	metatest.Run(t, func(t *testing.T) storage.Store {
		s, err := sqlite.Open(t.Context(), ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Reopening runs the migrations again: they must be recorded and skipped,
// and the data must still be there.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	ctx := t.Context()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.LinkBlob(ctx, "r", digest.FromBytes(digest.SHA256, []byte("a")), 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if n, err := s.BlobSize(ctx, "r", digest.FromBytes(digest.SHA256, []byte("a"))); err != nil || n != 3 {
		t.Fatalf("after reopen BlobSize = %d, %v", n, err)
	}
	var versions int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if versions != sqlmeta.SchemaVersion() {
		t.Fatalf("schema_migrations has %d rows, want %d", versions, sqlmeta.SchemaVersion())
	}
}

// The settings the durability and concurrency story depends on.
func TestPragmas(t *testing.T) {
	ctx := t.Context()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for pragma, want := range map[string]string{
		"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "10000",
		// The writer keeps group commit's savepoint journals in memory.
		"temp_store": "2",
	} {
		var got string
		if err := s.DB().QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
	// Every connection's page cache is bounded (the readers are several
	// connections, the writer's is half SQLite's default).
	for db, want := range map[string]struct {
		db   *sql.DB
		want string
	}{"reader": {s.ReadDB(), "-512"}, "writer": {s.DB(), "-1024"}} {
		conns := make([]*sql.Conn, 0, want.db.Stats().MaxOpenConnections)
		if db == "reader" && cap(conns) != runtime.GOMAXPROCS(0)+1 {
			t.Errorf("reader pool of %d connections, want GOMAXPROCS+1 (each has its own cache)", cap(conns))
		}
		for range cap(conns) { // distinct connections of the pool, held at once
			c, err := want.db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns = append(conns, c)
			if db == "writer" {
				break // one connection
			}
		}
		for _, c := range conns {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want.want {
				t.Errorf("%s connection: PRAGMA cache_size = %s, want %s", db, got, want.want)
			}
		}
	}
}

// A store commits with fdatasync(2) where the library can (Open): the
// WAL's timestamps are not what makes a commit durable.
func TestCommitsWithFdatasync(t *testing.T) {
	// From the library's default on, so the test shows what Open does.
	if _, err := msqlite.Fdatasync(false); errors.Is(err, msqlite.ErrFdatasyncUnavailable) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !msqlite.FdatasyncEnabled() {
		t.Error("after Open SQLite commits with fsync, want fdatasync")
	}
}

// A closed store answers ErrUnavailable (503), not an internal error.
func TestClosedIsUnavailable(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.LinkBlob(ctx, "r", digest.FromBytes(digest.SHA256, []byte("b")), 1); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("LinkBlob after Close = %v, want ErrUnavailable", err)
	}
	if _, err := s.ResolveTag(ctx, "r", "t"); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("ResolveTag after Close = %v, want ErrUnavailable", err)
	}
}

func TestIndexDepthMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	metatest.IndexDepthMigration(t, func(t *testing.T) storage.Store {
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, func(s storage.Store, stmt string) error {
		_, err := s.(*sqlmeta.Store).DB().ExecContext(context.Background(), stmt)
		return err
	})
}

// TestUploadOffsetCommitsRelaxed: the writer commits a PATCH's offset
// without the WAL fsync (synchronous NORMAL) and is back at FULL for the
// next write that must survive power loss.
func TestUploadOffsetCommitsRelaxed(t *testing.T) {
	ctx := t.Context()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	synchronous := func() string {
		var got string
		if err := s.DB().QueryRowContext(ctx, "PRAGMA synchronous").Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	now := time.Now()
	u := &storage.Upload{ID: "u1", Repo: "r/a", Algorithm: "sha256", Created: now, Updated: now}
	if err := s.CreateUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	u.Offset = 10
	if err := s.UpdateUpload(ctx, u, 0); err != nil {
		t.Fatal(err)
	}
	if got := synchronous(); got != "1" {
		t.Fatalf("after UpdateUpload PRAGMA synchronous = %s, want 1 (NORMAL)", got)
	}
	v := &storage.Upload{ID: "u2", Repo: "r/a", Algorithm: "sha256", Created: now, Updated: now}
	if err := s.CreateUpload(ctx, v); err != nil {
		t.Fatal(err)
	}
	if got := synchronous(); got != "2" {
		t.Fatalf("after a strict write PRAGMA synchronous = %s, want 2 (FULL)", got)
	}
	got, err := s.GetUpload(ctx, "u1")
	if err != nil || got.Offset != 10 {
		t.Fatalf("GetUpload = %+v, %v; want offset 10", got, err)
	}
}

// TestOptimizeKeepsStatistics: the store runs PRAGMA optimize as SQLite
// advises for a long-lived connection, on open and before closing, so the
// planner has statistics (sqlite_stat1) to choose plans by.
func TestOptimizeKeepsStatistics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	ctx := t.Context()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := s.LinkBlob(ctx, "r", digest.FromBytes(digest.SHA256, []byte{byte(i)}), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	stats := func() int {
		t.Helper()
		var n int
		if err := raw.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'blobs'`).Scan(&n); err != nil {
			t.Fatalf("statistics: %v", err)
		}
		return n
	}
	if stats() == 0 {
		t.Fatal("no statistics of blobs after the store closed")
	}
	// Gone (an older database): the next open gathers them again.
	if _, err := raw.ExecContext(ctx, `DELETE FROM sqlite_stat1`); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if stats() == 0 {
		t.Fatal("no statistics of blobs after the store opened")
	}
}

// TestOptimizePeriodically: a store that stays open runs it again every
// OptimizeEvery: a table empty at open (so not analyzed then) gets
// statistics once it has rows, while the store is open.
func TestOptimizePeriodically(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	ctx := t.Context()
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	s, err := sqlmeta.New(ctx, db, sqlite.Dialect, sqlmeta.Options{GroupCommit: true,
		Optimize: "PRAGMA optimize=0x10002", OptimizeEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 50 {
		if err := s.LinkBlob(ctx, "r", digest.FromBytes(digest.SHA256, []byte{byte(i)}), 1); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		err := raw.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'blobs'`).Scan(&n)
		if err == nil && n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no statistics of blobs while the store is open: %d %v", n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOptimizeReachesReaders: a periodic PRAGMA optimize that changed the
// statistics reaches the query-only reader connections, which load them
// with the schema, without their reopening. A table of the test's own
// whose two indexes swap selectivity (and grows 50 times, which is what
// makes optimize analyze it again) shows it in a reader's plan.
func TestOptimizeReachesReaders(t *testing.T) {
	f := newStatsFixture(t, sqlite.OptimizeReload)
	deadline := time.Now().Add(20 * time.Second)
	f.grow(deadline)
	// The reload commits just after the run that changed the statistics.
	f.waitPlan(deadline)
	// The store's own prepared reads still work on the reloaded schema.
	if _, err := f.s.GetManifest(t.Context(), "r", digest.FromBytes(digest.SHA256, []byte("x"))); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a read after the reload: %v", err)
	}
}

// TestFailedStatisticsReloadIsRetried: a periodic optimize that changed
// the statistics but whose reload failed leaves the readers on the old
// ones; a later run, which changes nothing more, still reloads them. A
// trigger on a table of the test's own refuses the reload until the test
// opens the gate (an update: neither a schema change nor a change of row
// count that would make optimize analyze anything).
func TestFailedStatisticsReloadIsRetried(t *testing.T) {
	f := newStatsFixture(t, `INSERT INTO reloads VALUES (1); `+sqlite.OptimizeReload,
		`CREATE TABLE gate (open INTEGER); INSERT INTO gate VALUES (0); CREATE TABLE reloads (n INTEGER)`,
		`CREATE TRIGGER gated BEFORE INSERT ON reloads WHEN NOT EXISTS (SELECT 1 FROM gate WHERE open = 1)
			BEGIN SELECT RAISE(ABORT, 'gate closed'); END`)
	deadline := time.Now().Add(20 * time.Second)
	f.grow(deadline)
	// A write waits for the writer's turn, which the run that changed the
	// statistics holds through its reload: past it, that reload has failed.
	if err := f.s.DeleteTag(t.Context(), "r", "none", storage.DeleteOptions{}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a write after the run: %v", err)
	}
	if p := f.plan(); !strings.Contains(p, "INDEX tb") {
		t.Fatalf("reader's plan after a failed reload: %q, want still index tb", p)
	}
	f.exec(`UPDATE gate SET open = 1`)
	f.waitPlan(deadline)
}

// A pull repeated with no write between reads nothing from the database:
// the store is its file's one writer, so it keeps what pulls read
// (sqlmeta.Options.BodyCache); a write makes the next pull read again.
func TestRepeatedPullReadsNothing(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	payload := []byte(`{"schemaVersion":2}`)
	m := &storage.Manifest{Repo: "r", Digest: digest.FromBytes(digest.SHA256, payload), MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: int64(len(payload)), Payload: payload}
	if err := s.PutManifest(t.Context(), m, []string{"latest"}, storage.PutManifestOptions{}); err != nil {
		t.Fatal(err)
	}
	var queries atomic.Int64
	s.ObserveOps(func(op string, _ time.Duration, _ error) {
		if op == "query" {
			queries.Add(1)
		}
	})
	pull := func(tag string, d digest.Digest) {
		t.Helper()
		got, err := s.GetManifestBody(t.Context(), "r", tag, d)
		if err != nil || got.Digest != m.Digest || string(got.Payload) != string(payload) {
			t.Fatalf("GetManifestBody %q %s = %+v, %v", tag, d, got, err)
		}
	}
	for _, ref := range []struct {
		tag string
		d   digest.Digest
	}{{"latest", ""}, {"", m.Digest}} {
		pull(ref.tag, ref.d)
		before := queries.Load()
		pull(ref.tag, ref.d)
		pull(ref.tag, ref.d)
		if n := queries.Load() - before; n != 0 {
			t.Errorf("pulls of %q %s repeated twice ran %d queries, want 0", ref.tag, ref.d, n)
		}
	}
	if err := s.PutManifest(t.Context(), m, []string{"v1"}, storage.PutManifestOptions{}); err != nil {
		t.Fatal(err)
	}
	before := queries.Load()
	pull("latest", "")
	if n := queries.Load() - before; n != 1 {
		t.Errorf("a pull after a write ran %d queries, want 1", n)
	}
}
