package metatest

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

var repoCases = []testCase{
	{"RepositoryExists", func(t *testing.T, s storage.Store) {
		has := func(repo string, want bool) {
			t.Helper()
			got, err := s.RepositoryExists(ctx(t), repo)
			ok(t, err, "RepositoryExists %s", repo)
			if got != want {
				t.Fatalf("RepositoryExists(%q) = %v, want %v", repo, got, want)
			}
		}
		has("a/b", false)
		link(t, s, "a/b", dg("x"), 1)
		put(t, s, manifest("c", "m"))
		has("a/b", true)
		has("c", true)
		has("a", false) // a prefix is not a repository
		has("a/b/c", false)
	}},
	{"RepositoryGoneWhenEmpty", func(t *testing.T, s storage.Store) {
		link(t, s, "r", dg("x"), 1)
		put(t, s, manifest("r", "m"), "t")
		ok(t, s.UnlinkBlob(ctx(t), "r", dg("x")), "UnlinkBlob")
		if got, _ := s.RepositoryExists(ctx(t), "r"); !got {
			t.Fatal("repository with a manifest left reported missing")
		}
		ok(t, s.DeleteManifest(ctx(t), "r", dg("m"), storage.DeleteOptions{}), "DeleteManifest")
		got, err := s.RepositoryExists(ctx(t), "r")
		ok(t, err, "RepositoryExists")
		if got {
			t.Fatal("repository with no blob, manifest or tag still exists")
		}
	}},
	{"ListRepositoriesByteOrder", func(t *testing.T, s storage.Store) {
		// '-' (0x2d) < '.' < '/' (0x2f) < '0' < 'A' < '_' < 'a' < 'é': any
		// locale-aware collation gets some of these wrong.
		names := []string{"a", "a/b", "a-b", "a.b", "a0", "A", "b", "a/b/c", "a_b", "ab", "é", "z"}
		for i, n := range names {
			link(t, s, n, dg(fmt.Sprint(i)), 1)
		}
		want := slices.Clone(names)
		slices.Sort(want) // Go compares strings byte by byte
		got, err := s.ListRepositories(ctx(t), "", 100)
		ok(t, err, "ListRepositories")
		equal(t, got, want, "ListRepositories")
	}},
	{"ListRepositoriesPagination", func(t *testing.T, s storage.Store) {
		var want []string
		for _, top := range []string{"a", "a-b", "a.b", "a/b", "ab", "b"} {
			for _, sub := range []string{"", "/x", "/x/y", "-x", "0"} {
				want = append(want, top+sub)
			}
		}
		for i, n := range want {
			put(t, s, manifest(n, fmt.Sprint("m", i)))
		}
		slices.Sort(want)
		want = slices.Compact(want)
		for _, n := range []int{1, 3, 7, len(want), len(want) + 5} {
			got := pages(t, n, func(last string, n int) ([]string, error) {
				return s.ListRepositories(ctx(t), last, n)
			})
			equal(t, got, want, fmt.Sprintf("repositories paged by %d", n))
		}
	}},
	{"ListRepositoriesAfterMissingName", func(t *testing.T, s storage.Store) {
		for _, n := range []string{"a", "a/b", "b", "c"} {
			link(t, s, n, dg(n), 1)
		}
		got, err := s.ListRepositories(ctx(t), "a/a", 2) // not a repository itself
		ok(t, err, "ListRepositories")
		equal(t, got, []string{"a/b", "b"}, "after a/a")
		got, err = s.ListRepositories(ctx(t), "c", 10)
		ok(t, err, "ListRepositories")
		equal(t, got, nil, "after the last one")
		got, err = s.ListRepositories(ctx(t), "", 0)
		ok(t, err, "ListRepositories n=0")
		equal(t, got, nil, "n=0")
	}},
	{"ListRepositoriesSkipsEmptied", func(t *testing.T, s storage.Store) {
		link(t, s, "a", dg("x"), 1)
		link(t, s, "b", dg("y"), 1)
		put(t, s, manifest("c", "m"), "t")
		ok(t, s.UnlinkBlob(ctx(t), "b", dg("y")), "UnlinkBlob")
		ok(t, s.DeleteManifest(ctx(t), "c", dg("m"), storage.DeleteOptions{}), "DeleteManifest")
		got, err := s.ListRepositories(ctx(t), "", 10)
		ok(t, err, "ListRepositories")
		equal(t, got, []string{"a"}, "repositories left with content")
	}},
	{"ConcurrentRepositoryCreation", func(t *testing.T, s storage.Store) {
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for i := range errs {
			wg.Go(func() {
				if i%2 == 0 {
					errs[i] = s.LinkBlob(ctx(t), "new/repo", dg(fmt.Sprint(i)), int64(i))
				} else {
					errs[i] = s.PutManifest(ctx(t), manifest("new/repo", fmt.Sprint(i)), []string{fmt.Sprint("t", i)}, storage.PutManifestOptions{})
				}
			})
		}
		wg.Wait()
		for i, err := range errs {
			ok(t, err, "writer %d", i)
		}
		got, err := s.ListRepositories(ctx(t), "", 10)
		ok(t, err, "ListRepositories")
		equal(t, got, []string{"new/repo"}, "repositories")
		for i := 0; i < 16; i += 2 {
			size, err := s.BlobSize(ctx(t), "new/repo", dg(fmt.Sprint(i)))
			ok(t, err, "BlobSize %d", i)
			if size != int64(i) {
				t.Fatalf("blob %d has size %d", i, size)
			}
		}
	}},
}

var blobCases = []testCase{
	{"LinkBlobAndSize", func(t *testing.T, s storage.Store) {
		link(t, s, "r", dg("a"), 42)
		link(t, s, "r", dg("a"), 42) // twice is not an error
		size, err := s.BlobSize(ctx(t), "r", dg("a"))
		ok(t, err, "BlobSize")
		if size != 42 {
			t.Fatalf("BlobSize = %d, want 42", size)
		}
		_, err = s.BlobSize(ctx(t), "r", dg("b"))
		is(t, err, storage.ErrNotFound, "BlobSize of an unlinked digest")
		_, err = s.BlobSize(ctx(t), "nope", dg("a"))
		is(t, err, storage.ErrNotFound, "BlobSize in an unknown repository")
	}},
	{"BlobSizesInOneRead", func(t *testing.T, s storage.Store) {
		// More digests than one query asks for (sqlmeta: 8), one twice,
		// some not linked here (one linked elsewhere only).
		var ds []digest.Digest
		var want []int64
		for i := range 11 {
			d := dg(fmt.Sprint("s", i))
			ds = append(ds, d)
			switch {
			case i%4 == 3:
				link(t, s, "elsewhere", d, 7)
				want = append(want, -1)
			default:
				link(t, s, "r", d, int64(100+i))
				want = append(want, int64(100+i))
			}
		}
		ds = append(ds, dg("s1"), dg("never"))
		want = append(want, 101, -1)
		got, err := s.BlobSizes(ctx(t), "r", ds)
		ok(t, err, "BlobSizes")
		if !slices.Equal(got, want) {
			t.Fatalf("BlobSizes = %v, want %v", got, want)
		}
		got, err = s.BlobSizes(ctx(t), "nope", ds[:2])
		ok(t, err, "BlobSizes in an unknown repository")
		if !slices.Equal(got, []int64{-1, -1}) {
			t.Fatalf("BlobSizes in an unknown repository = %v, want none linked", got)
		}
		if got, err := s.BlobSizes(ctx(t), "r", nil); err != nil || len(got) != 0 {
			t.Fatalf("BlobSizes of nothing = %v, %v", got, err)
		}
	}},
	{"BlobsIsolatedPerRepository", func(t *testing.T, s storage.Store) {
		link(t, s, "a", dg("x"), 1)
		link(t, s, "a/b", dg("y"), 2)
		_, err := s.BlobSize(ctx(t), "b", dg("x"))
		is(t, err, storage.ErrNotFound, "blob of a seen through b")
		_, err = s.BlobSize(ctx(t), "a", dg("y"))
		is(t, err, storage.ErrNotFound, "blob of a/b seen through a")
		link(t, s, "b", dg("x"), 1)
		ok(t, s.UnlinkBlob(ctx(t), "a", dg("x")), "UnlinkBlob")
		if _, err := s.BlobSize(ctx(t), "b", dg("x")); err != nil {
			t.Fatalf("unlinking from a removed it from b: %v", err)
		}
	}},
	{"UnlinkBlob", func(t *testing.T, s storage.Store) {
		link(t, s, "r", dg("x"), 1)
		link(t, s, "r", dg("y"), 2)
		ok(t, s.UnlinkBlob(ctx(t), "r", dg("x")), "UnlinkBlob")
		_, err := s.BlobSize(ctx(t), "r", dg("x"))
		is(t, err, storage.ErrNotFound, "BlobSize after unlink")
		if _, err := s.BlobSize(ctx(t), "r", dg("y")); err != nil {
			t.Fatalf("unlink removed a sibling: %v", err)
		}
		is(t, s.UnlinkBlob(ctx(t), "r", dg("x")), storage.ErrNotFound, "second unlink")
		is(t, s.UnlinkBlob(ctx(t), "nope", dg("y")), storage.ErrNotFound, "unlink in unknown repository")
	}},
	{"FindBlob", func(t *testing.T, s storage.Store) {
		_, _, err := s.FindBlob(ctx(t), dg("x"))
		is(t, err, storage.ErrNotFound, "FindBlob before any link")
		link(t, s, "one", dg("x"), 7)
		link(t, s, "two", dg("x"), 7)
		link(t, s, "three", dg("other"), 1)
		repo, size, err := s.FindBlob(ctx(t), dg("x"))
		ok(t, err, "FindBlob")
		if (repo != "one" && repo != "two") || size != 7 {
			t.Fatalf("FindBlob = %q, %d; want one or two, 7", repo, size)
		}
		ok(t, s.UnlinkBlob(ctx(t), "one", dg("x")), "UnlinkBlob")
		repo, _, err = s.FindBlob(ctx(t), dg("x"))
		ok(t, err, "FindBlob")
		if repo != "two" {
			t.Fatalf("FindBlob = %q after unlinking from one, want two", repo)
		}
		ok(t, s.UnlinkBlob(ctx(t), "two", dg("x")), "UnlinkBlob")
		_, _, err = s.FindBlob(ctx(t), dg("x"))
		is(t, err, storage.ErrNotFound, "FindBlob after unlinking everywhere")
	}},
}
