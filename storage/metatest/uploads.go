package metatest

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
)

func upload(id string, updated time.Time) *storage.Upload {
	return &storage.Upload{
		ID: id, Repo: "r/" + id, Algorithm: "sha256",
		Created: updated.Add(-time.Minute), Updated: updated,
	}
}

var uploadCases = []testCase{
	{"UploadCreateGet", func(t *testing.T, s storage.Store) {
		now := time.Now().UTC().Truncate(time.Millisecond)
		u := upload("u1", now)
		u.Offset = 12
		u.HashState = []byte{0x00, 0xff, 0x80, 'h'} // binary, not text
		u.Backend = []byte("multipart:abc\x00")
		ok(t, s.CreateUpload(ctx(t), u), "CreateUpload")
		got, err := s.GetUpload(ctx(t), "u1")
		ok(t, err, "GetUpload")
		if got.ID != u.ID || got.Repo != u.Repo || got.Offset != 12 || got.Algorithm != "sha256" ||
			!bytes.Equal(got.HashState, u.HashState) || !bytes.Equal(got.Backend, u.Backend) ||
			!got.Created.Equal(u.Created) || !got.Updated.Equal(u.Updated) {
			t.Fatalf("GetUpload = %+v\nwant %+v", got, u)
		}
		_, err = s.GetUpload(ctx(t), "u2")
		is(t, err, storage.ErrNotFound, "unknown upload")
	}},
	{"UploadCompareAndSwap", func(t *testing.T, s storage.Store) {
		u := upload("u", time.Now().UTC().Truncate(time.Millisecond))
		ok(t, s.CreateUpload(ctx(t), u), "CreateUpload")
		next := *u
		next.Offset, next.HashState, next.Backend = 100, []byte("state100"), []byte("part1")
		next.Updated = u.Updated.Add(time.Second)
		ok(t, s.UpdateUpload(ctx(t), &next, 0), "UpdateUpload from 0")
		stale := *u
		stale.Offset, stale.HashState = 50, []byte("state50")
		is(t, s.UpdateUpload(ctx(t), &stale, 0), storage.ErrConflict, "UpdateUpload from a moved offset")
		got, err := s.GetUpload(ctx(t), "u")
		ok(t, err, "GetUpload")
		if got.Offset != 100 || string(got.HashState) != "state100" || string(got.Backend) != "part1" ||
			!got.Updated.Equal(next.Updated) {
			t.Fatalf("after CAS: %+v", got)
		}
		next.Offset = 150
		ok(t, s.UpdateUpload(ctx(t), &next, 100), "UpdateUpload from 100")
		if got, _ := s.GetUpload(ctx(t), "u"); got.Offset != 150 {
			t.Fatalf("offset = %d, want 150", got.Offset)
		}
	}},
	{"UploadConcurrentCAS", func(t *testing.T, s storage.Store) {
		ok(t, s.CreateUpload(ctx(t), upload("u", time.Now())), "CreateUpload")
		var won, lost atomic.Int32
		var wg sync.WaitGroup
		for i := range 12 {
			wg.Go(func() {
				u := upload("u", time.Now())
				u.Offset = int64(10 + i)
				switch err := s.UpdateUpload(ctx(t), u, 0); {
				case err == nil:
					won.Add(1)
				case !isErr(err, storage.ErrConflict):
					t.Errorf("writer %d: %v", i, err)
				default:
					lost.Add(1)
				}
			})
		}
		wg.Wait()
		if won.Load() != 1 || lost.Load() != 11 {
			t.Fatalf("%d writers won and %d lost the same CAS; want 1 and 11", won.Load(), lost.Load())
		}
	}},
	{"UpdateUnknownUpload", func(t *testing.T, s storage.Store) {
		err := s.UpdateUpload(ctx(t), upload("ghost", time.Now()), 0)
		if !isErr(err, storage.ErrNotFound) && !isErr(err, storage.ErrConflict) {
			t.Fatalf("UpdateUpload of an unknown session = %v, want ErrNotFound or ErrConflict", err)
		}
		_, err = s.GetUpload(ctx(t), "ghost")
		is(t, err, storage.ErrNotFound, "UpdateUpload created a session")
	}},
	{"DeleteUpload", func(t *testing.T, s storage.Store) {
		ok(t, s.CreateUpload(ctx(t), upload("a", time.Now())), "CreateUpload a")
		ok(t, s.CreateUpload(ctx(t), upload("b", time.Now())), "CreateUpload b")
		ok(t, s.DeleteUpload(ctx(t), "a"), "DeleteUpload")
		_, err := s.GetUpload(ctx(t), "a")
		is(t, err, storage.ErrNotFound, "GetUpload after delete")
		if _, err := s.GetUpload(ctx(t), "b"); err != nil {
			t.Fatalf("deleting a removed b: %v", err)
		}
		is(t, s.DeleteUpload(ctx(t), "a"), storage.ErrNotFound, "second DeleteUpload")
	}},
	{"FinishUpload", func(t *testing.T, s storage.Store) {
		u := upload("fin", time.Now())
		ok(t, s.CreateUpload(ctx(t), u), "CreateUpload")
		ok(t, s.CreateUpload(ctx(t), upload("other", time.Now())), "CreateUpload other")
		d := dg("finished blob")
		ok(t, s.FinishUpload(ctx(t), "fin", u.Repo, d, 13), "FinishUpload")
		if size, err := s.BlobSize(ctx(t), u.Repo, d); err != nil || size != 13 {
			t.Fatalf("BlobSize after FinishUpload = %d, %v", size, err)
		}
		_, err := s.GetUpload(ctx(t), "fin")
		is(t, err, storage.ErrNotFound, "session after FinishUpload")
		if _, err := s.GetUpload(ctx(t), "other"); err != nil {
			t.Fatalf("FinishUpload removed another session: %v", err)
		}
		// Finishing again (another request got there first) links again
		// and succeeds: the blob is there either way.
		ok(t, s.FinishUpload(ctx(t), "fin", "r/elsewhere", d, 13), "FinishUpload of a finished session")
		if _, err := s.BlobSize(ctx(t), "r/elsewhere", d); err != nil {
			t.Fatalf("BlobSize in the second repository: %v", err)
		}
	}},
	{"StaleUploads", func(t *testing.T, s storage.Store) {
		now := time.Now()
		for i, age := range []time.Duration{3 * time.Hour, time.Hour, 2 * time.Hour, 0, time.Minute} {
			ok(t, s.CreateUpload(ctx(t), upload(fmt.Sprint("u", i), now.Add(-age))), "CreateUpload %d", i)
		}
		ids := func(us []*storage.Upload) []string {
			var out []string
			for _, u := range us {
				out = append(out, u.ID)
			}
			return out
		}
		n, err := s.CountUploads(ctx(t))
		ok(t, err, "CountUploads")
		if n != 5 {
			t.Fatalf("CountUploads = %d, want 5", n)
		}
		got, err := s.StaleUploads(ctx(t), now.Add(-30*time.Minute), 10)
		ok(t, err, "StaleUploads")
		if len(got) != 3 || !containsAll(ids(got), "u0", "u1", "u2") {
			t.Fatalf("stale = %q, want u0 u1 u2", ids(got))
		}
		got, err = s.StaleUploads(ctx(t), now.Add(-30*time.Minute), 2)
		ok(t, err, "StaleUploads n=2")
		if len(got) != 2 {
			t.Fatalf("StaleUploads(n=2) returned %d", len(got))
		}
		// A session that moves is no longer stale.
		u1, err := s.GetUpload(ctx(t), "u1")
		ok(t, err, "GetUpload")
		u1.Offset, u1.Updated = 5, now
		ok(t, s.UpdateUpload(ctx(t), u1, 0), "UpdateUpload")
		got, err = s.StaleUploads(ctx(t), now.Add(-30*time.Minute), 10)
		ok(t, err, "StaleUploads")
		if len(got) != 2 || !containsAll(ids(got), "u0", "u2") {
			t.Fatalf("stale after update = %q, want u0 u2", ids(got))
		}
		ok(t, s.DeleteUpload(ctx(t), "u3"), "DeleteUpload")
		if n, err = s.CountUploads(ctx(t)); err != nil || n != 4 {
			t.Fatalf("CountUploads after a delete = %d, %v; want 4", n, err)
		}
	}},
}

var leaseCases = []testCase{
	{"LeaseHeldAndRenewed", func(t *testing.T, s storage.Store) {
		acquire(t, s, "gc", "A", time.Minute, true)
		acquire(t, s, "gc", "B", time.Minute, false)
		acquire(t, s, "gc", "A", time.Minute, true) // renew
		acquire(t, s, "sync", "B", time.Minute, true)
		acquire(t, s, "gc", "B", time.Minute, false)
	}},
	{"LeaseExpires", func(t *testing.T, s storage.Store) {
		acquire(t, s, "gc", "A", time.Second, true)
		acquire(t, s, "gc", "B", time.Minute, false)
		awaitLease(t, s, "gc", "B") // A's lease expires, B takes it over
		acquire(t, s, "gc", "A", time.Minute, false)
	}},
	{"LeaseRenewalExtends", func(t *testing.T, s storage.Store) {
		acquire(t, s, "gc", "A", time.Second, true)
		// probe is taken after gc's first term and for as long: once
		// another holder gets it, that term is over by the store's clock.
		acquire(t, s, "probe", "A", time.Second, true)
		acquire(t, s, "gc", "A", time.Minute, true) // renew
		awaitLease(t, s, "probe", "B")
		acquire(t, s, "gc", "B", time.Minute, false) // past the first term, inside the renewed one
	}},
	{"LeaseRelease", func(t *testing.T, s storage.Store) {
		acquire(t, s, "gc", "A", time.Minute, true)
		ok(t, s.ReleaseLease(ctx(t), "gc", "B"), "ReleaseLease by a non-holder")
		acquire(t, s, "gc", "B", time.Minute, false)
		ok(t, s.ReleaseLease(ctx(t), "gc", "A"), "ReleaseLease")
		acquire(t, s, "gc", "B", time.Minute, true)
		ok(t, s.ReleaseLease(ctx(t), "never", "A"), "ReleaseLease of an unknown lease")
	}},
	{"LeaseConcurrentAcquire", func(t *testing.T, s storage.Store) {
		var won atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				got, err := s.AcquireLease(ctx(t), "gc", fmt.Sprint("holder", i), time.Minute)
				if err != nil {
					t.Errorf("AcquireLease %d: %v", i, err)
				}
				if got {
					won.Add(1)
				}
			})
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("%d holders got the same lease, want 1", won.Load())
		}
	}},
}

func acquire(t *testing.T, s storage.Store, name, holder string, ttl time.Duration, want bool) {
	t.Helper()
	got, err := s.AcquireLease(ctx(t), name, holder, ttl)
	ok(t, err, "AcquireLease %s by %s", name, holder)
	if got != want {
		t.Fatalf("AcquireLease(%s, %s) = %v, want %v", name, holder, got, want)
	}
}

// awaitLease polls until holder gets lease name (for a minute), as a
// replica waiting out a dead holder's lease does; leases expire by the
// store's clock, so the test waits on the store, not on a sleep.
func awaitLease(t *testing.T, s storage.Store, name, holder string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := s.AcquireLease(ctx(t), name, holder, time.Minute)
		ok(t, err, "AcquireLease %s by %s", name, holder)
		if got {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never got lease %s in 10s: it did not expire", holder, name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}
