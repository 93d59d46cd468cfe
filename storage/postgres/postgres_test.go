package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/metatest"
	"github.com/packreg/packreg/storage/postgres"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// testDSN returns $PACKREG_TEST_POSTGRES. Without it the tests skip on a
// developer's machine but fail in CI, where the service is mandatory.
func testDSN(t *testing.T) string {
	dsn := os.Getenv("PACKREG_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("PACKREG_TEST_POSTGRES is empty under CI: start PostgreSQL with .ci/pg.sh")
		}
		t.Skip("PACKREG_TEST_POSTGRES not set (eval \"$(bash .ci/pg.sh)\" to run these)")
	}
	return dsn
}

// freshSchema is a DSN of an empty schema of its own, dropped when the
// test ends (teststores.PostgresSchema), with a pool for the suite's
// parallel subtests.
func freshSchema(t *testing.T) string {
	u, err := url.Parse(teststores.PostgresSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "20")
	u.RawQuery = q.Encode()
	return u.String()
}

func open(t *testing.T, dsn string) *sqlmeta.Store {
	s, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIndexDepthMigration(t *testing.T) {
	dsn := freshSchema(t)
	metatest.IndexDepthMigration(t, func(t *testing.T) storage.Store { return open(t, dsn) },
		func(s storage.Store, stmt string) error {
			_, err := s.(*sqlmeta.Store).DB().ExecContext(context.Background(), stmt)
			return err
		})
}

func TestMetadata(t *testing.T) {
	testDSN(t)
	metatest.Run(t, func(t *testing.T) storage.Store { return open(t, freshSchema(t)) })
}

// Replicas starting together on an empty database: the advisory lock makes
// one of them migrate and the others find every step recorded.
func TestConcurrentMigrations(t *testing.T) {
	dsn := freshSchema(t)
	var wg sync.WaitGroup
	stores := make([]*sqlmeta.Store, 6)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(t.Context(), dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	var n int
	if err := stores[0].DB().QueryRowContext(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != sqlmeta.SchemaVersion() {
		t.Fatalf("schema_migrations has %d rows, want %d", n, sqlmeta.SchemaVersion())
	}
}

// Ordering must be byte order even when the database's locale is not C.
func TestNameColumnsAreByteOrdered(t *testing.T) {
	s := open(t, freshSchema(t))
	defer s.Close()
	var coll string
	err := s.DB().QueryRowContext(t.Context(), `SELECT collation_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'tags' AND column_name = 'name'`).Scan(&coll)
	if err != nil {
		t.Fatal(err)
	}
	if coll != "C" {
		t.Fatalf("tags.name collation = %q, want C", coll)
	}
}

// An unreachable server is ErrUnavailable (503), not an internal error.
func TestUnreachableIsUnavailable(t *testing.T) {
	testDSN(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback: connection refused at once.
	_, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/packreg?sslmode=disable&connect_timeout=2")
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Open of an unreachable server = %v, want ErrUnavailable", err)
	}
	s := open(t, freshSchema(t))
	s.Close()
	if _, err := s.ResolveTag(ctx, "r", "t"); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("ResolveTag after Close = %v, want ErrUnavailable", err)
	}
}

// A blob link that queues an event costs no round trip more than one
// that queues none: the link and its queue rows go in one statement (a
// writable CTE). The link's event is then pending for a consumer.
func TestLinkAndItsEventsInOneStatement(t *testing.T) {
	testDSN(t)
	ctx := t.Context()
	s := open(t, freshSchema(t))
	defer s.Close()
	if err := s.AddEventConsumer(ctx, "watcher"); err != nil {
		t.Fatal(err)
	}
	var statements atomic.Int64
	s.ObserveOps(func(op string, _ time.Duration, _ error) {
		if op == "exec" || op == "query" {
			statements.Add(1)
		}
	})
	count := func(blob string, evs ...storage.Event) int64 {
		t.Helper()
		before := statements.Load()
		d := digest.FromBytes(digest.SHA256, []byte(blob))
		if err := s.LinkBlob(ctx, "acme/rules", d, 1, evs...); err != nil {
			t.Fatal(err)
		}
		return statements.Load() - before
	}
	count("first") // the repository's creation, and its id remembered
	quiet := count("quiet")
	loud := count("loud", storage.Event{Action: "blob.push", Target: "acme/rules", Digest: digest.FromBytes(digest.SHA256, []byte("loud"))})
	if loud != quiet {
		t.Fatalf("statements of a link: %d with an event, %d without; want as many", loud, quiet)
	}
	evs, err := s.PendingEvents(ctx, "watcher", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Action != "blob.push" || evs[0].Digest != digest.FromBytes(digest.SHA256, []byte("loud")) {
		t.Fatalf("pending for the watcher: %+v, want the one blob.push", evs)
	}
	if size, err := s.BlobSize(ctx, "acme/rules", digest.FromBytes(digest.SHA256, []byte("loud"))); err != nil || size != 1 {
		t.Fatalf("blob linked with its event: size %d, %v", size, err)
	}
}
