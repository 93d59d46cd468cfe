package sqlmeta_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/sqlite"
	"github.com/packreg/packreg/storage/sqlmeta"
)

func openGroup(t *testing.T) *sqlmeta.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func insertLease(name string) func(ctx context.Context, tx *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO leases (name, holder, expires) VALUES (?, 'h', 0)`, name)
		return err
	}
}

func leaseCount(t *testing.T, s *sqlmeta.Store, name string) int {
	t.Helper()
	var c int
	if err := s.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM leases WHERE name = ?`, name).Scan(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// A write with no other write about runs on its caller's goroutine: the
// hand-off to the loop cost one client two goroutine switches per write.
func TestLoneWriteRunsOnTheCallersGoroutine(t *testing.T) {
	s := openGroup(t)
	var stack string
	err := s.Write(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
		buf := make([]byte, 64<<10)
		stack = string(buf[:runtime.Stack(buf, false)])
		return insertLease("lone")(ctx, tx)
	})
	if err != nil {
		t.Fatal(err)
	}
	// The test's goroutine started in testing.tRunner; the loop's in New.
	if !strings.Contains(stack, "testing.tRunner") || strings.Contains(stack, "groupLoop") {
		t.Errorf("the lone write ran on another goroutine:\n%s", stack)
	}
	if c := leaseCount(t, s, "lone"); c != 1 {
		t.Errorf("lone write left %d rows, want 1", c)
	}
}

// holdWriter starts a write (tracked by wg) that runs inline and holds the
// writer connection until release is called: writes started meanwhile
// queue to the loop, to run as one batch.
func holdWriter(t *testing.T, s *sqlmeta.Store, wg *sync.WaitGroup) (release func()) {
	t.Helper()
	hold, released := make(chan struct{}), make(chan struct{})
	wg.Go(func() {
		if err := s.Write(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
			close(hold)
			<-released
			return insertLease("first")(ctx, tx)
		}); err != nil {
			t.Error(err)
		}
	})
	<-hold
	return func() { close(released) }
}

// awaitWriters waits until n writes are in submit (the holder included).
func awaitWriters(t *testing.T, s *sqlmeta.Store, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Writers() != n {
		if time.Now().After(deadline) {
			t.Fatalf("writers in submit: %d, want %d", s.Writers(), n)
		}
		runtime.Gosched()
	}
}

// Writes that arrive while another holds the writer queue to the loop and
// share one commit, as before.
func TestQueuedWritesShareACommit(t *testing.T) {
	s := openGroup(t)
	var commits atomic.Int64
	s.ObserveOps(func(op string, _ time.Duration, err error) {
		if op == "commit" && err == nil {
			commits.Add(1)
		}
	})
	var wg sync.WaitGroup
	release := holdWriter(t, s, &wg)
	const queued = 8
	for i := range queued {
		wg.Go(func() {
			if err := s.Write(t.Context(), insertLease(fmt.Sprint(i))); err != nil {
				t.Error(err)
			}
		})
	}
	awaitWriters(t, s, 1+queued)
	release()
	wg.Wait()
	// The loop waited for the first write, then took every queued one.
	if got := commits.Load(); got >= 1+queued {
		t.Errorf("%d commits for %d writes: the queued writes did not share one", got, 1+queued)
	}
	for i := range queued {
		if c := leaseCount(t, s, fmt.Sprint(i)); c != 1 {
			t.Errorf("queued write %d left %d rows, want 1", i, c)
		}
	}
}

// A lone caller cancelled while its body runs still gets its write
// committed (the body's statements ignore the cancel, as in the loop), and
// leaves the writer connection out of any transaction: the next write works.
func TestLoneWriteCancelledMidway(t *testing.T) {
	s := openGroup(t)
	ctx, cancel := context.WithCancel(t.Context())
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		cancel()
		return insertLease("cancelled")(ctx, tx)
	})
	if err != nil {
		t.Fatalf("write cancelled midway: %v", err)
	}
	boom := errors.New("boom")
	if err := s.Write(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
		if err := insertLease("failed")(ctx, tx); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("failing write: err = %v, want boom", err)
	}
	if err := s.Write(t.Context(), insertLease("next")); err != nil {
		t.Fatalf("write after a cancelled and a failed one: %v", err)
	}
	for name, want := range map[string]int{"cancelled": 1, "failed": 0, "next": 1} {
		if c := leaseCount(t, s, name); c != want {
			t.Errorf("%s: %d rows, want %d", name, c, want)
		}
	}
}

// Close waits for a lone write in progress, and writes after it fail as
// unavailable.
func TestCloseWaitsForALoneWrite(t *testing.T) {
	s := openGroup(t)
	in, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Write(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
			close(in)
			<-release
			return insertLease("during")(ctx, tx)
		})
	}()
	<-in
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("write in progress at Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Write(t.Context(), insertLease("after")); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("write after Close: err = %v, want ErrUnavailable", err)
	}
}

// A lone write whose body panics (a handler's panic, which net/http
// recovers) rolls back and frees the writer: the next write works.
func TestLoneWritePanicFreesTheWriter(t *testing.T) {
	// Not openGroup: Close would wait for good on a writer left in its
	// transaction, so this test closes the store only once it is free.
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the body's panic did not reach the caller")
			}
		}()
		_ = s.Write(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
			if err := insertLease("panicked")(ctx, tx); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	// A writer left in its transaction would block the next write for
	// good (its BEGIN waits for the one connection): bound the wait.
	done := make(chan error, 1)
	go func() { done <- s.Write(t.Context(), insertLease("next")) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("write after a panicking one: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("write after a panicking one still waits for the writer after 30s")
	}
	defer s.Close()
	for name, want := range map[string]int{"panicked": 0, "next": 1} {
		if c := leaseCount(t, s, name); c != want {
			t.Errorf("%s: %d rows, want %d", name, c, want)
		}
	}
}
