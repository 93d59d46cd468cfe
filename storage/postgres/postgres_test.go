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

// watched opens a store in a fresh schema with one event consumer,
// "watcher", closed when t ends.
func watched(t *testing.T) *sqlmeta.Store {
	t.Helper()
	testDSN(t)
	return watchedAt(t, freshSchema(t))
}

// watchedTrips is watched through a tripCounter.
func watchedTrips(t *testing.T) (*sqlmeta.Store, *tripCounter) {
	t.Helper()
	testDSN(t)
	dsn, trips := tripDSN(t, freshSchema(t))
	return watchedAt(t, dsn), trips
}

// watchedAt is watched on dsn.
func watchedAt(t *testing.T, dsn string) *sqlmeta.Store {
	t.Helper()
	s := open(t, dsn)
	t.Cleanup(func() { s.Close() })
	if err := s.AddEventConsumer(t.Context(), "watcher"); err != nil {
		t.Fatal(err)
	}
	return s
}

// countStatements counts the statements s sends from now on (its
// ObserveOps hook: a store has one).
func countStatements(s *sqlmeta.Store) *atomic.Int64 {
	var n atomic.Int64
	s.ObserveOps(func(op string, _ time.Duration, _ error) {
		if op == "exec" || op == "query" {
			n.Add(1)
		}
	})
	return &n
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
	ctx := t.Context()
	s := watched(t)
	statements := countStatements(s)
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

// TestManifestPutRoundTrips: a manifest PUT with one tag and its events,
// with a repository whose id the store knows, is two round trips on the
// wire: its references read, then one statement that locks them again and
// writes the first push, the row, the tag and the events' queue rows, in
// autocommit; one, the statement, when the put gives the sizes of its
// blobs (PresentBlobSizes). It was five: BEGIN, the references locked,
// the first push and the row, the tag and the queue rows, COMMIT. The
// manifest pushed again keeps its first push's created time.
func TestManifestPutRoundTrips(t *testing.T) {
	ctx := t.Context()
	s, trips := watchedTrips(t)
	cfg := digest.FromBytes(digest.SHA256, []byte("config"))
	if err := s.LinkBlob(ctx, "acme/rules", cfg, 6); err != nil { // the repository's id remembered
		t.Fatal(err)
	}
	put := func(body, tag string, created time.Time, sizes []int64) int64 {
		t.Helper()
		m := &storage.Manifest{Repo: "acme/rules", Digest: digest.FromBytes(digest.SHA256, []byte(body)),
			MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(body)), Payload: []byte(body),
			Refs: []digest.Digest{cfg}, Created: created}
		evs := []storage.Event{{Actor: "t", Action: "manifest.push", Target: "acme/rules", Digest: m.Digest},
			{Actor: "t", Action: "tag.move", Target: "acme/rules:" + tag, Digest: m.Digest}}
		before := trips.trips.Load()
		if err := s.PutManifest(ctx, m, []string{tag}, storage.PutManifestOptions{Events: evs, Present: m.Refs, PresentBlobSizes: sizes}); err != nil {
			t.Fatal(err)
		}
		return trips.trips.Load() - before
	}
	first := time.Unix(1_700_000_000, 0).UTC()
	put(`{"n":0}`, "v0", first, nil) // the statements prepared
	if n := put(`{"n":1}`, "v1", first, nil); n != 2 {
		t.Fatalf("round trips of a manifest PUT with one tag and its events: %d, want 2", n)
	}
	sized := []int64{6}
	put(`{"n":2}`, "w", first, sized)
	if n := put(`{"n":1}`, "v2", first.Add(time.Hour), sized); n != 1 {
		t.Fatalf("round trips of a manifest PUT with its blobs' sizes: %d, want 1", n)
	}
	m, err := s.GetTaggedManifest(ctx, "acme/rules", "v2")
	if err != nil {
		t.Fatal(err)
	}
	if !m.Created.Equal(first) {
		t.Fatalf("created after a second push: %s, want the first push's %s", m.Created, first)
	}
	evs, err := s.PendingEvents(ctx, "watcher", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 8 || evs[3].Action != "tag.move" || evs[7].Target != "acme/rules:v2" {
		t.Fatalf("pending for the watcher: %+v, want the push and tag of each PUT", evs)
	}
	for _, tag := range []string{"v1", "v2"} {
		if d, err := s.ResolveTag(ctx, "acme/rules", tag); err != nil || d != m.Digest {
			t.Fatalf("tag %s: %s, %v; want %s", tag, d, err, m.Digest)
		}
	}
}

// TestAckIsOneRoundTrip: a consumer's acknowledgement of what it read
// (the attest and compliance workers: two events per manifest PUT at
// least) deletes them in one statement, not one each, and without a
// transaction around it: one round trip on the wire, where BEGIN and
// COMMIT made it three.
func TestAckIsOneRoundTrip(t *testing.T) {
	ctx := t.Context()
	s, trips := watchedTrips(t)
	for i := range 20 {
		d := digest.FromBytes(digest.SHA256, []byte{byte(i)})
		if err := s.LinkBlob(ctx, "acme/rules", d, 1, storage.Event{Action: "blob.push", Target: "acme/rules", Digest: d}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := s.PendingEvents(ctx, "watcher", 0)
	if err != nil || len(evs) != 20 {
		t.Fatalf("pending: %d events, %v; want 20", len(evs), err)
	}
	ack := func(evs []storage.Event) int64 {
		t.Helper()
		ids := make([]int64, 0, len(evs))
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
		before := trips.trips.Load()
		if err := s.AckEvents(ctx, "watcher", ids...); err != nil {
			t.Fatal(err)
		}
		return trips.trips.Load() - before
	}
	ack(evs[:5]) // the statements prepared
	if n := ack(evs[5:10]); n != 1 {
		t.Fatalf("round trips of an acknowledgement of 5 events: %d, want 1", n)
	}
	left, err := s.PendingEvents(ctx, "watcher", 0)
	if err != nil || len(left) != 10 || left[0].ID != evs[10].ID {
		t.Fatalf("pending after acknowledging the first 10: %d events (%v), want the other 10", len(left), err)
	}
}
