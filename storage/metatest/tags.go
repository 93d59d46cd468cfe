package metatest

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

var tagCases = []testCase{
	{"ResolveTag", func(t *testing.T, s storage.Store) {
		m := manifest("r", "m")
		put(t, s, m, "latest", "1.0")
		resolves(t, s, "r", "latest", m.Digest)
		resolves(t, s, "r", "1.0", m.Digest)
		_, err := s.ResolveTag(ctx(t), "r", "1")
		is(t, err, storage.ErrNotFound, "unknown tag")
		_, err = s.ResolveTag(ctx(t), "other", "latest")
		is(t, err, storage.ErrNotFound, "tag of another repository")
		_, err = s.ResolveTag(ctx(t), "r", "LATEST")
		is(t, err, storage.ErrNotFound, "tags are case-sensitive")
	}},
	{"GetTaggedManifest", func(t *testing.T, s storage.Store) {
		m1, m2 := manifest("r", "one"), manifest("r", "two")
		m1.Annotations = map[string]string{"k": "v"}
		m1.Refs = []digest.Digest{dg("config"), dg("layer")}
		m1.Subject = dg("subject")
		put(t, s, m1, "latest", "1")
		put(t, s, m2, "2")
		put(t, s, manifest("other", "three"), "latest")
		tagged := func(tag string, want *storage.Manifest) {
			t.Helper()
			got, err := s.GetTaggedManifest(ctx(t), "r", tag)
			ok(t, err, "GetTaggedManifest %s", tag)
			byDigest, err := s.GetManifest(ctx(t), "r", want.Digest)
			ok(t, err, "GetManifest %s", want.Digest)
			if !reflect.DeepEqual(got, byDigest) {
				t.Fatalf("GetTaggedManifest %s = %+v\nGetManifest = %+v", tag, got, byDigest)
			}
		}
		tagged("latest", m1)
		tagged("2", m2)
		for _, c := range []struct{ repo, tag, why string }{
			{"r", "3", "unknown tag"}, {"r", "LATEST", "tags are case-sensitive"},
			{"nope", "latest", "unknown repository"}, {"r2", "latest", "tag of another repository"},
		} {
			_, err := s.GetTaggedManifest(ctx(t), c.repo, c.tag)
			is(t, err, storage.ErrNotFound, "%s", c.why)
		}
		put(t, s, m2, "latest") // moved: the next read follows the tag
		tagged("latest", m2)
		ok(t, s.DeleteTag(ctx(t), "r", "2", storage.DeleteOptions{}), "DeleteTag")
		_, err := s.GetTaggedManifest(ctx(t), "r", "2")
		is(t, err, storage.ErrNotFound, "deleted tag")
		ok(t, s.DeleteManifest(ctx(t), "r", m1.Digest, storage.DeleteOptions{}), "DeleteManifest")
		_, err = s.GetTaggedManifest(ctx(t), "r", "1")
		is(t, err, storage.ErrNotFound, "tag of a deleted manifest")
	}},
	{"GetManifestBody", func(t *testing.T, s storage.Store) {
		m1, m2 := manifest("r", "one"), manifest("r", "two")
		m1.Annotations = map[string]string{"k": "v"}
		m1.Refs = []digest.Digest{dg("config")}
		m1.Subject = dg("subject")
		put(t, s, m1, "latest")
		put(t, s, m2, "2")
		put(t, s, manifest("other", "three"), "latest")
		body := func(tag string, d digest.Digest, want *storage.Manifest) {
			t.Helper()
			got, err := s.GetManifestBody(ctx(t), "r", tag, d)
			ok(t, err, "GetManifestBody %q %s", tag, d)
			full, err := s.GetManifest(ctx(t), "r", want.Digest)
			ok(t, err, "GetManifest %s", want.Digest)
			served := &storage.Manifest{Repo: full.Repo, Digest: full.Digest, MediaType: full.MediaType,
				Size: full.Size, Payload: full.Payload}
			if !reflect.DeepEqual(got, served) {
				t.Fatalf("GetManifestBody %q %s = %+v\nwant what a pull serves of %+v", tag, d, got, full)
			}
		}
		body("latest", "", m1)
		body("2", "", m2)
		body("", m1.Digest, m1)
		body("", m2.Digest, m2)
		for _, c := range []struct {
			repo, tag string
			d         digest.Digest
			why       string
		}{
			{"r", "3", "", "unknown tag"}, {"r", "LATEST", "", "tags are case-sensitive"},
			{"nope", "latest", "", "unknown repository"}, {"r", "", dg("three"), "manifest of another repository"},
			{"r", "", dg("four"), "unknown digest"},
		} {
			_, err := s.GetManifestBody(ctx(t), c.repo, c.tag, c.d)
			is(t, err, storage.ErrNotFound, "%s", c.why)
		}
		put(t, s, m2, "latest") // moved: the next read follows the tag
		body("latest", "", m2)
		// A caller changing what it got changes nothing for the next.
		got, err := s.GetManifestBody(ctx(t), "r", "latest", "")
		ok(t, err, "GetManifestBody latest")
		got.Digest, got.MediaType, got.Size = m1.Digest, "x", 0
		body("latest", "", m2)
		ok(t, s.DeleteTag(ctx(t), "r", "2", storage.DeleteOptions{}), "DeleteTag")
		_, err = s.GetManifestBody(ctx(t), "r", "2", "")
		is(t, err, storage.ErrNotFound, "deleted tag")
		body("", m2.Digest, m2) // the manifest stays
		ok(t, s.DeleteManifest(ctx(t), "r", m1.Digest, storage.DeleteOptions{}), "DeleteManifest")
		_, err = s.GetManifestBody(ctx(t), "r", "", m1.Digest)
		is(t, err, storage.ErrNotFound, "deleted manifest")
	}},
	{"GetManifestBodyFollowsWrites", func(t *testing.T, s storage.Store) {
		// Pulls run while a tag moves back and forth: once a move has
		// returned, every pull that starts sees it (a store that keeps
		// what pulls read must not keep a read from before the move).
		ms := []*storage.Manifest{manifest("r", "one"), manifest("r", "two")}
		put(t, s, ms[0], "latest")
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := s.GetManifestBody(ctx(t), "r", "latest", ""); err != nil {
						t.Errorf("GetManifestBody during the moves: %v", err)
						return
					}
				}
			})
		}
		defer wg.Wait()
		defer close(stop)
		for i := range 100 {
			want := ms[(i+1)%2]
			put(t, s, want, "latest")
			got, err := s.GetManifestBody(ctx(t), "r", "latest", "")
			ok(t, err, "GetManifestBody after move %d", i)
			if got.Digest != want.Digest {
				t.Fatalf("move %d: GetManifestBody latest = %s, want %s", i, got.Digest, want.Digest)
			}
		}
	}},
	{"TagMoves", func(t *testing.T, s storage.Store) {
		m1, m2 := manifest("r", "one"), manifest("r", "two")
		put(t, s, m1, "latest", "1")
		put(t, s, m2, "latest")
		resolves(t, s, "r", "latest", m2.Digest)
		resolves(t, s, "r", "1", m1.Digest)
		if _, err := s.GetManifest(ctx(t), "r", m1.Digest); err != nil {
			t.Fatalf("moving a tag away removed the old manifest: %v", err)
		}
		tags, err := s.ListTags(ctx(t), "r", "", 10)
		ok(t, err, "ListTags")
		equal(t, tags, []string{"1", "latest"}, "tags after the move")
		// The old manifest no longer owns latest: deleting it keeps the tag.
		ok(t, s.DeleteManifest(ctx(t), "r", m1.Digest, storage.DeleteOptions{}), "DeleteManifest")
		resolves(t, s, "r", "latest", m2.Digest)
	}},
	{"ListTagsByteOrder", func(t *testing.T, s storage.Store) {
		tags := []string{"latest", "LATEST", "1", "1.0", "1.0.0", "1.0.0-rc1", "1.0-rc", "1-0", "1_0",
			"10", "2", "_", "a", "A", "Z", "z", "v1.2.3", "v1.2.3+build", "sha256-abc.sig"}
		put(t, s, manifest("r", "m"), tags...)
		want := slices.Clone(tags)
		slices.Sort(want)
		got, err := s.ListTags(ctx(t), "r", "", len(tags)+10)
		ok(t, err, "ListTags")
		equal(t, got, want, "ListTags")
	}},
	{"ListTagsPagination", func(t *testing.T, s storage.Store) {
		// 2,500 tags full of prefixes of each other, spread over manifests.
		var want []string
		for i := range 500 {
			v := fmt.Sprintf("%d.%d", i/20, i%20)
			want = append(want, v, v+".0", v+".0-rc1", v+"-rc", v+"_x")
		}
		for i := 0; i < len(want); i += 250 {
			put(t, s, manifest("r", fmt.Sprint("m", i)), want[i:i+250]...)
		}
		put(t, s, manifest("r2", "other"), "0.0", "zzz") // another repository's tags stay out
		slices.Sort(want)
		if len(slices.Compact(slices.Clone(want))) != 2500 {
			t.Fatal("test data has duplicate tags")
		}
		for _, n := range []int{1000, 100, 7, 2500, 3000} {
			got := pages(t, n, func(last string, n int) ([]string, error) {
				return s.ListTags(ctx(t), "r", last, n)
			})
			equal(t, got, want, fmt.Sprintf("tags paged by %d", n))
		}
		got, err := s.ListTags(ctx(t), "r", "1.0", 3) // from the middle, after an existing tag
		ok(t, err, "ListTags after 1.0")
		i, _ := slices.BinarySearch(want, "1.0")
		equal(t, got, want[i+1:i+4], "page after 1.0")
		got, err = s.ListTags(ctx(t), "r", "1.0.5", 2) // after a name that is not a tag
		ok(t, err, "ListTags after 1.0.5")
		i, _ = slices.BinarySearch(want, "1.0.5")
		equal(t, got, want[i:i+2], "page after 1.0.5")
	}},
	{"ListTagsEdges", func(t *testing.T, s storage.Store) {
		put(t, s, manifest("r", "m"), "a", "b")
		got, err := s.ListTags(ctx(t), "r", "b", 10)
		ok(t, err, "ListTags after last")
		equal(t, got, nil, "after the last tag")
		got, err = s.ListTags(ctx(t), "r", "", 0)
		ok(t, err, "ListTags n=0")
		equal(t, got, nil, "n=0")
		got, err = s.ListTags(ctx(t), "r", "", 1)
		ok(t, err, "ListTags n=1")
		equal(t, got, []string{"a"}, "n=1")
		got, err = s.ListTags(ctx(t), "unknown", "", 10)
		if err != nil {
			is(t, err, storage.ErrNotFound, "ListTags of an unknown repository")
		}
		equal(t, got, nil, "tags of an unknown repository")
	}},
	{"ListTagsNamesWithNewlines", func(t *testing.T, s storage.Store) {
		// Storage does not rely on a tag grammar: a name holding what a
		// store might join a page with still lists as itself.
		put(t, s, manifest("r", "m"), "a", "b\nc", "d", "e\n", "\n")
		got, err := s.ListTags(ctx(t), "r", "", 10)
		ok(t, err, "ListTags")
		equal(t, got, []string{"\n", "a", "b\nc", "d", "e\n"}, "the whole page")
		got, err = s.ListTags(ctx(t), "r", "a", 2)
		ok(t, err, "ListTags after a")
		equal(t, got, []string{"b\nc", "d"}, "a page in the middle")
	}},
	{"ListTagsJoined", func(t *testing.T, s storage.Store) {
		tj, joins := s.(storage.TagsJoiner)
		if !joins {
			t.Skip("the store does not join tags pages")
		}
		put(t, s, manifest("r", "m"), "a", "b", "c", "d")
		put(t, s, manifest("nl", "m"), "a", "b\nc", "d", "\n")
		for _, c := range []struct {
			repo, last string
			n          int
		}{{"r", "", 10}, {"r", "", 2}, {"r", "b", 1}, {"r", "d", 5}, {"r", "", 0}, {"unknown", "", 5},
			{"nl", "", 10}, {"nl", "a", 2}, {"nl", "b\nc", 3}, {"nl", "", 1}} {
			what := fmt.Sprintf("page of %d after %q in %s", c.n, c.last, c.repo)
			want, werr := s.ListTags(ctx(t), c.repo, c.last, c.n)
			joined, count, whole, err := tj.ListTagsJoined(ctx(t), c.repo, c.last, c.n)
			if (err != nil) != (werr != nil) {
				t.Fatalf("%s: ListTagsJoined error %v, ListTags error %v", what, err, werr)
			}
			var got []string
			if count > 0 {
				got = strings.Split(joined, storage.TagSeparator)
			}
			switch {
			case !whole && !slices.ContainsFunc(want, func(tag string) bool { return strings.Contains(tag, storage.TagSeparator) }):
				t.Fatalf("%s: not joined, yet no tag of %q holds the separator", what, want)
			case whole && (len(got) != count || !slices.Equal(got, want)):
				t.Fatalf("%s: joined %q (%d names), want %q", what, joined, count, want)
			}
		}
	}},
	{"DeleteTag", func(t *testing.T, s storage.Store) {
		m := manifest("r", "m")
		put(t, s, m, "a", "b")
		ok(t, s.DeleteTag(ctx(t), "r", "a", storage.DeleteOptions{}), "DeleteTag")
		_, err := s.ResolveTag(ctx(t), "r", "a")
		is(t, err, storage.ErrNotFound, "deleted tag")
		resolves(t, s, "r", "b", m.Digest)
		if _, err := s.GetManifest(ctx(t), "r", m.Digest); err != nil {
			t.Fatalf("DeleteTag removed the manifest: %v", err)
		}
		is(t, s.DeleteTag(ctx(t), "r", "a", storage.DeleteOptions{}), storage.ErrNotFound, "second DeleteTag")
		is(t, s.DeleteTag(ctx(t), "nope", "b", storage.DeleteOptions{}), storage.ErrNotFound, "DeleteTag in unknown repository")
	}},
	{"SameTagInTwoRepositories", func(t *testing.T, s storage.Store) {
		a, b := manifest("a", "ma"), manifest("a/b", "mb")
		put(t, s, a, "latest")
		put(t, s, b, "latest")
		resolves(t, s, "a", "latest", a.Digest)
		resolves(t, s, "a/b", "latest", b.Digest)
		ok(t, s.DeleteTag(ctx(t), "a", "latest", storage.DeleteOptions{}), "DeleteTag")
		resolves(t, s, "a/b", "latest", b.Digest)
		tags, err := s.ListTags(ctx(t), "a", "", 10)
		ok(t, err, "ListTags")
		equal(t, tags, nil, "tags of a")
	}},
	{"ConcurrentPutsSameTag", func(t *testing.T, s storage.Store) {
		const n = 16
		ms := make([]*storage.Manifest, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			ms[i] = manifest("r", fmt.Sprint("m", i))
			wg.Go(func() {
				errs[i] = s.PutManifest(ctx(t), ms[i], []string{"latest", fmt.Sprint("v", i)}, storage.PutManifestOptions{})
			})
		}
		wg.Wait()
		var digests []digest.Digest
		for i, err := range errs {
			ok(t, err, "writer %d", i)
			digests = append(digests, ms[i].Digest)
			if _, err := s.GetManifest(ctx(t), "r", ms[i].Digest); err != nil {
				t.Fatalf("manifest %d lost: %v", i, err)
			}
			resolves(t, s, "r", fmt.Sprint("v", i), ms[i].Digest)
		}
		got, err := s.ResolveTag(ctx(t), "r", "latest")
		ok(t, err, "ResolveTag latest")
		if !slices.Contains(digests, got) {
			t.Fatalf("latest = %s, not one of the pushed manifests", got)
		}
		tags, err := s.ListTags(ctx(t), "r", "", 100)
		ok(t, err, "ListTags")
		if len(tags) != n+1 {
			t.Fatalf("got %d tags, want %d: %q", len(tags), n+1, tags)
		}
	}},
}
