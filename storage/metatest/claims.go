package metatest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// putClaimed is PutManifest with claims, returning its error.
func putClaimed(t *testing.T, s storage.Store, m *storage.Manifest, tag string, mode storage.ClaimMode) error {
	t.Helper()
	return s.PutManifest(ctx(t), m, []string{tag}, storage.PutManifestOptions{Claims: []storage.TagClaim{{Tag: tag, Mode: mode}}})
}

// refusedBy checks err is the ClaimError of tag held by want.
func refusedBy(t *testing.T, err error, tag string, want digest.Digest, what string) {
	t.Helper()
	var ce *storage.ClaimError
	if !errors.As(err, &ce) || ce.Tag != tag || ce.Claimed != want || !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("%s: got %v, want a claim error on %s held by %s", what, err, tag, want)
	}
}

func claimed(t *testing.T, s storage.Store, repo, tag string, want digest.Digest) {
	t.Helper()
	got, err := s.ClaimedDigest(ctx(t), repo, tag)
	if want == "" {
		is(t, err, storage.ErrNotFound, "claim of %s:%s", repo, tag)
		return
	}
	ok(t, err, "ClaimedDigest %s:%s", repo, tag)
	if got != want {
		t.Fatalf("claim of %s:%s = %s, want %s", repo, tag, got, want)
	}
}

var claimCases = []testCase{
	{"ClaimBindsForGood", func(t *testing.T, s storage.Store) {
		a, b := manifest("r", "a"), manifest("r", "b")
		ok(t, putClaimed(t, s, a, "1.0.0", storage.ClaimBind), "first bind")
		claimed(t, s, "r", "1.0.0", a.Digest)
		ok(t, putClaimed(t, s, a, "1.0.0", storage.ClaimBind), "same digest again")
		refusedBy(t, putClaimed(t, s, b, "1.0.0", storage.ClaimBind), "1.0.0", a.Digest, "other digest")
		// Refused means nothing changed: b is not stored, the tag stays.
		resolves(t, s, "r", "1.0.0", a.Digest)
		_, err := s.GetManifest(ctx(t), "r", b.Digest)
		is(t, err, storage.ErrNotFound, "manifest of a refused put")
		// The claim outlives the tag and the manifest.
		ok(t, s.DeleteTag(ctx(t), "r", "1.0.0", storage.DeleteOptions{}), "DeleteTag")
		refusedBy(t, putClaimed(t, s, b, "1.0.0", storage.ClaimBind), "1.0.0", a.Digest, "after the tag is deleted")
		ok(t, s.DeleteManifest(ctx(t), "r", a.Digest, storage.DeleteOptions{}), "DeleteManifest")
		refusedBy(t, putClaimed(t, s, b, "1.0.0", storage.ClaimBind), "1.0.0", a.Digest, "after the manifest is deleted")
		refusedBy(t, putClaimed(t, s, b, "1.0.0", storage.ClaimCheck), "1.0.0", a.Digest, "check against the claim")
		_, err = s.ResolveTag(ctx(t), "r", "1.0.0")
		is(t, err, storage.ErrNotFound, "tag after refused puts")
		// The same content takes its version back.
		ok(t, putClaimed(t, s, a, "1.0.0", storage.ClaimBind), "same digest after delete")
		resolves(t, s, "r", "1.0.0", a.Digest)
		// Claims are per repository and per tag; unclaimed tags are free.
		ok(t, putClaimed(t, s, manifest("other", "b"), "1.0.0", storage.ClaimBind), "other repository")
		ok(t, putClaimed(t, s, b, "2.0.0", storage.ClaimCheck), "check of a free tag")
		claimed(t, s, "r", "2.0.0", "")
		ok(t, s.PutManifest(ctx(t), b, []string{"1.0.0"}, storage.PutManifestOptions{}), "a put without claims is not checked")
	}},
	{"ClaimRebindMoves", func(t *testing.T, s storage.Store) {
		a, b := manifest("r", "a"), manifest("r", "b")
		ok(t, putClaimed(t, s, a, "1.0.0", storage.ClaimBind), "bind")
		ok(t, putClaimed(t, s, b, "1.0.0", storage.ClaimRebind), "rebind")
		claimed(t, s, "r", "1.0.0", b.Digest)
		refusedBy(t, putClaimed(t, s, a, "1.0.0", storage.ClaimBind), "1.0.0", b.Digest, "bind after rebind")
	}},
	{"ClaimOfAnUnwrittenTag", func(t *testing.T, s storage.Store) {
		err := s.PutManifest(ctx(t), manifest("r", "a"), []string{"latest"},
			storage.PutManifestOptions{Claims: []storage.TagClaim{{Tag: "1.0.0", Mode: storage.ClaimBind}}})
		if err == nil {
			t.Fatal("a claim of a tag the put does not write was accepted")
		}
		claimed(t, s, "r", "1.0.0", "")
	}},
	{"ClaimConcurrentFirstBinds", func(t *testing.T, s storage.Store) {
		// Many first pushes of one version with different content, at
		// once: exactly one wins, the others are refused by its claim.
		const n = 16
		for round := range 3 {
			tag := fmt.Sprintf("1.0.%d", round)
			ms := make([]*storage.Manifest, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				ms[i] = manifest("race/repo", fmt.Sprintf("content %d of %s", i, tag))
				wg.Go(func() {
					<-start
					errs[i] = putClaimed(t, s, ms[i], tag, storage.ClaimBind)
				})
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				if err == nil {
					if winner >= 0 {
						t.Fatalf("%s: puts %d and %d both succeeded", tag, winner, i)
					}
					winner = i
				}
			}
			if winner < 0 {
				t.Fatalf("%s: every put failed: %v", tag, errs)
			}
			for i, err := range errs {
				if i != winner {
					refusedBy(t, err, tag, ms[winner].Digest, fmt.Sprintf("%s: loser %d", tag, i))
				}
			}
			resolves(t, s, "race/repo", tag, ms[winner].Digest)
			claimed(t, s, "race/repo", tag, ms[winner].Digest)
		}
	}},
	{"FirstPushTimeSurvivesDelete", func(t *testing.T, s storage.Store) {
		// Both ways a manifest's row goes: a delete, and the collector's
		// sweep of a manifest no tag holds.
		for _, c := range []struct {
			repo string
			tags []string
			gone func(d digest.Digest)
		}{
			{"r", []string{"1.0.0"}, func(d digest.Digest) {
				ok(t, s.DeleteManifest(ctx(t), "r", d, storage.DeleteOptions{}), "DeleteManifest")
			}},
			{"swept", nil, func(d digest.Digest) { sweepM(t, s, "swept", d, afterNow(), true, "untagged") }},
		} {
			m := manifest(c.repo, "signed later")
			m.Created = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
			put(t, s, m, c.tags...)
			c.gone(m.Digest)
			again := *m
			again.Created = m.Created.Add(24 * time.Hour)
			put(t, s, &again, c.tags...)
			got, err := s.GetManifest(ctx(t), c.repo, m.Digest)
			ok(t, err, "GetManifest")
			if !got.Created.Equal(m.Created) {
				t.Fatalf("%s: created after delete and re-push = %v, want the first push %v", c.repo, got.Created, m.Created)
			}
		}
		// Per repository: the same digest elsewhere has its own first push.
		m := manifest("r", "signed later")
		other := *m
		other.Repo = "elsewhere"
		other.Created = time.Date(2024, 1, 3, 3, 4, 5, 0, time.UTC)
		put(t, s, &other)
		got, err := s.GetManifest(ctx(t), "elsewhere", m.Digest)
		ok(t, err, "GetManifest elsewhere")
		if !got.Created.Equal(other.Created) {
			t.Fatalf("created in another repository = %v, want %v", got.Created, other.Created)
		}
	}},
}
