package metatest

import (
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
)

func testImport(id string, created time.Time) *storage.BundleImport {
	return &storage.BundleImport{ID: id, State: storage.ImportReceiving, Actor: "anonymous@127.0.0.1:1",
		Report: `{"versions":[]}`, Created: created, Updated: created}
}

func applied(d string, chain string, seq int64, prev string, imp string) *storage.AppliedBundle {
	b := &storage.AppliedBundle{Digest: dg(d), Chain: chain, Sequence: seq, ImportID: imp,
		Applied: time.Now().UTC().Truncate(time.Millisecond)}
	if prev != "" {
		b.Previous = dg(prev)
	}
	return b
}

var bundleCases = []testCase{
	{"BundleImports", func(t *testing.T, s storage.Store) {
		c := ctx(t)
		t0 := time.Now().UTC().Truncate(time.Millisecond)
		a, b := testImport("a", t0), testImport("b", t0.Add(time.Second))
		ok(t, s.PutBundleImport(c, a), "put a")
		ok(t, s.PutBundleImport(c, b), "put b")
		a.State, a.BundleDigest, a.Chain, a.Sequence, a.Report = storage.ImportPublishing, dg("bundle"), "chain", 3, `{"x":1}`
		a.Updated = t0.Add(time.Minute)
		ok(t, s.PutBundleImport(c, a), "replace a")
		got, err := s.GetBundleImport(c, "a")
		ok(t, err, "get a")
		if *got != *a {
			t.Fatalf("GetBundleImport:\n got  %+v\n want %+v", got, a)
		}
		_, err = s.GetBundleImport(c, "nope")
		is(t, err, storage.ErrNotFound, "unknown import")
		list, err := s.ListBundleImports(c, time.Time{}, 10)
		ok(t, err, "list")
		if len(list) != 2 || list[0].ID != "b" || list[1].ID != "a" {
			t.Fatalf("newest first: %+v", list)
		}
		list, err = s.ListBundleImports(c, b.Created, 10)
		ok(t, err, "list before b")
		if len(list) != 1 || list[0].ID != "a" {
			t.Fatalf("before b: %+v", list)
		}
		list, err = s.ListBundleImports(c, time.Time{}, 1)
		ok(t, err, "list 1")
		if len(list) != 1 || list[0].ID != "b" {
			t.Fatalf("limit 1: %+v", list)
		}
	}},
	{"BundleChain", func(t *testing.T, s storage.Store) {
		c := ctx(t)
		_, err := s.ChainHead(c, "c")
		is(t, err, storage.ErrNotFound, "head of an unknown chain")
		head0, err := s.AuditHead(c)
		ok(t, err, "AuditHead")
		refused := func(b *storage.AppliedBundle, what string) {
			t.Helper()
			imp := testImport("refused-"+what, time.Now().UTC())
			rec := &storage.AuditRecord{Actor: "x", Action: "bundle.import", Target: "bundle:c"}
			is(t, s.ApplyBundle(c, b, imp, rec), storage.ErrConflict, "%s", what)
			_, err := s.GetBundleImport(c, imp.ID)
			is(t, err, storage.ErrNotFound, "%s: the import of a refused apply", what)
		}
		refused(applied("two", "c", 2, "one", "i2"), "second bundle before the first")

		rec := &storage.AuditRecord{Actor: "x", Action: "bundle.import", Target: "bundle:c", Digest: dg("one")}
		imp := testImport("i1", time.Now().UTC().Truncate(time.Millisecond))
		imp.State = storage.ImportSucceeded
		first := applied("one", "c", 1, "", "i1")
		ok(t, s.ApplyBundle(c, first, imp, rec), "first bundle")
		if rec.ID != head0.ID+1 || rec.Hash == "" {
			t.Fatalf("audit record of the apply: %+v (head was %d)", rec, head0.ID)
		}
		if got, err := s.GetBundleImport(c, "i1"); err != nil || got.State != storage.ImportSucceeded {
			t.Fatalf("import stored with the apply: %+v %v", got, err)
		}
		got, err := s.AppliedBundle(c, dg("one"))
		ok(t, err, "AppliedBundle")
		if *got != *first {
			t.Fatalf("AppliedBundle:\n got  %+v\n want %+v", got, first)
		}
		_, err = s.AppliedBundle(c, dg("two"))
		is(t, err, storage.ErrNotFound, "a bundle not applied")

		refused(applied("one-bis", "c", 1, "", "ix"), "another first bundle")
		refused(applied("one", "c", 2, "one", "ix"), "the same bundle again")
		refused(applied("three", "c", 3, "two", "ix"), "a gap")
		refused(applied("two", "c", 2, "other", "ix"), "a wrong predecessor")
		ok(t, s.ApplyBundle(c, applied("two", "c", 2, "one", "i2"), testImport("i2", time.Now().UTC())), "second bundle")
		head, err := s.ChainHead(c, "c")
		ok(t, err, "ChainHead")
		if head.Sequence != 2 || head.Digest != dg("two") || head.Previous != dg("one") {
			t.Fatalf("head: %+v", head)
		}
		// Chains are independent.
		ok(t, s.ApplyBundle(c, applied("d1", "d", 1, "", "i3"), testImport("i3", time.Now().UTC())), "another chain")
		if h, _ := s.ChainHead(c, "c"); h.Sequence != 2 {
			t.Fatalf("chain c moved: %+v", h)
		}
	}},
	{"BundleChainRace", func(t *testing.T, s storage.Store) {
		c := ctx(t)
		ok(t, s.ApplyBundle(c, applied("one", "c", 1, "", "i1"), testImport("i1", time.Now().UTC())), "first")
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := string(rune('a' + i))
				errs[i] = s.ApplyBundle(c, applied("two-"+id, "c", 2, "one", id), testImport(id, time.Now().UTC()))
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
			} else {
				is(t, err, storage.ErrConflict, "a loser")
			}
		}
		if won != 1 {
			t.Fatalf("%d of 8 racing bundles took position 2, want 1", won)
		}
	}},
}
