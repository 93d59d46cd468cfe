package metatest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// sweepM and sweepL propose one delete of the collector's sweep.
func sweepM(t *testing.T, s storage.Store, repo string, d digest.Digest, cutoff time.Time, want bool, why string) {
	t.Helper()
	got, err := s.SweepManifest(ctx(t), repo, d, cutoff, storage.DeleteOptions{})
	ok(t, err, "SweepManifest %s (%s)", d, why)
	if got != want {
		t.Fatalf("SweepManifest %s (%s) deleted = %v, want %v", d, why, got, want)
	}
}

func sweepL(t *testing.T, s storage.Store, repo string, d digest.Digest, cutoff time.Time, want bool, why string) {
	t.Helper()
	res, err := s.SweepLinks(ctx(t), cutoff, []storage.LinkSweep{{Repo: repo, Digest: d}})
	ok(t, err, "SweepLinks %s (%s)", d, why)
	if got := res[0]; got != want {
		t.Fatalf("SweepLink %s (%s) unlinked = %v, want %v", d, why, got, want)
	}
}

// afterNow is a cutoff after everything written so far.
func afterNow() time.Time { return time.Now().Add(time.Millisecond) }

var gcCases = []testCase{
	{"GCSweepManifestRechecksEveryRule", func(t *testing.T, s storage.Store) {
		const repo = "gc/m"
		tagged, untagged := manifest(repo, "tagged"), manifest(repo, "untagged")
		child := manifest(repo, "child")
		parent := manifest(repo, "parent")
		parent.Refs = []digest.Digest{child.Digest}
		sig := referrer(repo, "sig", tagged.Digest, "application/vnd.dev.cosign")
		orphan := referrer(repo, "orphan-sig", untagged.Digest, "application/vnd.dev.cosign")
		young := manifest(repo, "young")
		put(t, s, tagged, "v1")
		for _, m := range []*storage.Manifest{untagged, child, parent, sig, orphan} {
			put(t, s, m)
		}
		cutoff := afterNow()
		before := cutoff.Add(-time.Hour)
		waitPast(cutoff)
		put(t, s, young)

		sweepM(t, s, repo, tagged.Digest, cutoff, false, "tagged")
		sweepM(t, s, repo, young.Digest, cutoff, false, "pushed after the cutoff")
		sweepM(t, s, repo, untagged.Digest, before, false, "pushed after an older cutoff")
		sweepM(t, s, repo, child.Digest, cutoff, false, "listed by another manifest")
		sweepM(t, s, repo, sig.Digest, cutoff, false, "its subject is stored")
		sweepM(t, s, repo, orphan.Digest, cutoff, false, "its subject is stored, even untagged")
		sweepM(t, s, repo, dg("never pushed"), cutoff, false, "absent")

		sweepM(t, s, repo, untagged.Digest, cutoff, true, "untagged, not listed")
		sweepM(t, s, repo, orphan.Digest, cutoff, true, "its subject is gone")
		sweepM(t, s, repo, parent.Digest, cutoff, true, "untagged parent")
		sweepM(t, s, repo, child.Digest, cutoff, true, "its parent is gone")
		for _, m := range []*storage.Manifest{untagged, orphan, parent, child} {
			_, err := s.GetManifest(ctx(t), repo, m.Digest)
			is(t, err, storage.ErrNotFound, "GetManifest of swept %s", m.Digest)
		}
		for _, m := range []*storage.Manifest{tagged, sig, young} {
			_, err := s.GetManifest(ctx(t), repo, m.Digest)
			ok(t, err, "GetManifest of kept %s", m.Digest)
		}
	}},
	{"GCSweepLinkRechecksEveryRule", func(t *testing.T, s storage.Store) {
		const repo = "gc/l"
		listed, loose, young := dg("listed"), dg("loose"), dg("young")
		link(t, s, repo, listed, 6)
		link(t, s, repo, loose, 5)
		m := manifest(repo, "lists")
		m.Refs = []digest.Digest{listed}
		put(t, s, m, "v1")
		link(t, s, "gc/other", loose, 5) // another repository's link is its own
		cutoff := afterNow()
		waitPast(cutoff)
		link(t, s, repo, young, 5)

		sweepL(t, s, repo, listed, cutoff, false, "a manifest lists it")
		sweepL(t, s, repo, young, cutoff, false, "linked after the cutoff")
		sweepL(t, s, repo, loose, cutoff.Add(-time.Hour), false, "linked after an older cutoff")
		sweepL(t, s, repo, loose, cutoff, true, "nothing lists it")
		_, err := s.BlobSize(ctx(t), repo, loose)
		is(t, err, storage.ErrNotFound, "BlobSize after the sweep")
		_, err = s.BlobSize(ctx(t), "gc/other", loose)
		ok(t, err, "BlobSize in the other repository")
	}},
	{"GCBlobLinkedAgainSinceTheMarkIsKept", func(t *testing.T, s storage.Store) {
		const repo = "gc/again"
		d, u := dg("again"), dg("again by upload")
		link(t, s, repo, d, 5)
		link(t, s, repo, u, 5)
		var marked []storage.GCLink
		ok(t, s.GCLinks(ctx(t), func(l storage.GCLink) error { marked = append(marked, l); return nil }), "GCLinks")
		if len(marked) != 2 {
			t.Fatalf("GCLinks saw %v, want the 2 links", marked)
		}
		cutoff := afterNow() // the mark: both are older
		for _, l := range marked {
			if !l.Linked.Before(cutoff) {
				t.Fatalf("link %v is not older than the mark's cutoff %v", l, cutoff)
			}
		}
		waitPast(cutoff)
		link(t, s, repo, d, 5) // a mount or a push of the same bytes
		up := upload("gc-again", time.Now())
		up.Repo = repo
		ok(t, s.CreateUpload(ctx(t), up), "CreateUpload")
		ok(t, s.FinishUpload(ctx(t), up.ID, repo, u, 5), "FinishUpload")
		sweepL(t, s, repo, d, cutoff, false, "linked again since the mark")
		sweepL(t, s, repo, u, cutoff, false, "uploaded again since the mark")
	}},
	{"GCManifestPushedAgainSinceTheMarkIsKept", func(t *testing.T, s storage.Store) {
		const repo = "gc/repush"
		m := manifest(repo, "repushed")
		put(t, s, m)
		cutoff := afterNow()
		waitPast(cutoff)
		put(t, s, m) // by digest again, as a client pushing an index's child does
		sweepM(t, s, repo, m.Digest, cutoff, false, "pushed again since the mark")
		got, err := s.GetManifest(ctx(t), repo, m.Digest)
		ok(t, err, "GetManifest")
		if !got.Created.Equal(m.Created) {
			t.Fatalf("Created = %v after a push again, want the first push's %v", got.Created, m.Created)
		}
	}},
	{"GCPutFailsWhenAPresentRefIsGone", func(t *testing.T, s storage.Store) {
		const repo = "gc/present"
		have, child := dg("have"), manifest(repo, "child")
		link(t, s, repo, have, 4)
		put(t, s, child)
		m := manifest(repo, "needs")
		m.Refs = []digest.Digest{have, child.Digest}
		ok(t, s.PutManifest(ctx(t), m, []string{"ok"}, storage.PutManifestOptions{Present: m.Refs}), "put, all present")

		gone := dg("gone")
		m2 := manifest(repo, "needs gone")
		m2.Refs = []digest.Digest{have, gone}
		err := s.PutManifest(ctx(t), m2, []string{"t2"}, storage.PutManifestOptions{Present: m2.Refs})
		var rg *storage.RefGoneError
		if !errors.As(err, &rg) || rg.Digest != gone || !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("put with %s gone: got %v, want a RefGoneError naming it", gone, err)
		}
		_, err = s.GetManifest(ctx(t), repo, m2.Digest)
		is(t, err, storage.ErrNotFound, "the refused manifest")
		_, err = s.ResolveTag(ctx(t), repo, "t2")
		is(t, err, storage.ErrNotFound, "the refused tag")
	}},
	{"PutShowsCheckPresentWhatItFound", func(t *testing.T, s storage.Store) {
		const repo = "gc/check"
		blob, gone := dg("blob"), dg("gone")
		link(t, s, repo, blob, 4)
		child := manifest(repo, "child index")
		child.MediaType, child.IndexDepth = oci.MediaTypeImageIndex, 2
		put(t, s, child)
		// An image's references are blobs first, an index's manifests
		// first; the check sees them in Present's order, duplicates too.
		for _, c := range []struct {
			mediaType string
			present   []digest.Digest
			want      []storage.PresentRef
		}{
			{oci.MediaTypeImageManifest, []digest.Digest{gone, blob, child.Digest, blob}, []storage.PresentRef{
				{Digest: gone, Size: -1}, {Digest: blob, Size: 4},
				{Digest: child.Digest, Size: child.Size, Manifest: true, IndexDepth: 2}, {Digest: blob, Size: 4}}},
			{oci.MediaTypeImageIndex, []digest.Digest{child.Digest, gone}, []storage.PresentRef{
				{Digest: child.Digest, Size: child.Size, Manifest: true, IndexDepth: 2}, {Digest: gone, Size: -1}}},
		} {
			m := manifest(repo, "checked "+c.mediaType)
			m.MediaType = c.mediaType
			refused := errors.New("refused by the check")
			var got []storage.PresentRef
			err := s.PutManifest(ctx(t), m, []string{"t"}, storage.PutManifestOptions{Present: c.present,
				CheckPresent: func(found []storage.PresentRef) error { got = found; return refused }})
			if !errors.Is(err, refused) {
				t.Fatalf("put of a %s refused by its check: %v, want the check's error", c.mediaType, err)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("a %s's check saw %+v, want %+v", c.mediaType, got, c.want)
			}
			_, err = s.GetManifest(ctx(t), repo, m.Digest)
			is(t, err, storage.ErrNotFound, "the manifest its check refused")
			// A check that completes the manifest: it is written after.
			err = s.PutManifest(ctx(t), m, []string{"t"}, storage.PutManifestOptions{Present: c.present,
				CheckPresent: func([]storage.PresentRef) error { m.IndexDepth = 5; return nil }})
			ok(t, err, "put of a %s its check accepts", c.mediaType)
			stored, err := s.GetManifest(ctx(t), repo, m.Digest)
			ok(t, err, "GetManifest")
			if stored.IndexDepth != 5 {
				t.Fatalf("IndexDepth = %d, want the 5 its check set", stored.IndexDepth)
			}
		}
	}},
	{"GCTombstoneHandshake", func(t *testing.T, s storage.Store) {
		linked, free := dg("still linked"), dg("free")
		link(t, s, "gc/t", linked, 3)
		got, err := s.BeginBlobDelete(ctx(t), []digest.Digest{linked, free})
		ok(t, err, "BeginBlobDelete")
		if len(got) != 2 || got[0] || !got[1] {
			t.Fatalf("BeginBlobDelete(linked, free) = %v, want [false true]", got)
		}
		// A writer linking now sees the tombstone after its link.
		for _, d := range []digest.Digest{linked, free} {
			deleting, err := s.BlobDeleting(ctx(t), d)
			ok(t, err, "BlobDeleting")
			if !deleting {
				t.Fatalf("BlobDeleting(%s) = false under a tombstone", d)
			}
		}
		ok(t, s.EndBlobDelete(ctx(t), []digest.Digest{linked, free}), "EndBlobDelete")
		deleting, err := s.BlobDeleting(ctx(t), free)
		ok(t, err, "BlobDeleting")
		if deleting {
			t.Fatal("BlobDeleting = true after EndBlobDelete")
		}
	}},
	{"GCTombstoneHistory", func(t *testing.T, s storage.Store) {
		h, isHistory := s.(storage.DeleteHistory)
		if !isHistory {
			t.Skipf("%T keeps no ended tombstones", s)
		}
		d, other := dg("deleted once"), dg("never deleted")
		// Ages, not times: the store counts them back on its own clock.
		const recent = time.Minute
		within := func(d digest.Digest, age time.Duration) (bool, bool) {
			t.Helper()
			deleting, begun, err := h.BlobDeletingWithin(ctx(t), d, age)
			ok(t, err, "BlobDeletingWithin")
			return deleting, begun
		}
		if deleting, begun := within(d, recent); deleting || begun {
			t.Fatalf("no tombstone yet: deleting %v, begun %v", deleting, begun)
		}
		_, err := s.BeginBlobDelete(ctx(t), []digest.Digest{d})
		ok(t, err, "BeginBlobDelete")
		if deleting, begun := within(d, recent); !deleting || !begun {
			t.Fatalf("under a tombstone: deleting %v, begun %v", deleting, begun)
		}
		ok(t, s.EndBlobDelete(ctx(t), []digest.Digest{d}), "EndBlobDelete")
		if deleting, begun := within(d, recent); deleting || !begun {
			t.Fatalf("after the delete: deleting %v, begun %v; want begun only", deleting, begun)
		}
		if deleting, err := s.BlobDeleting(ctx(t), d); err != nil || deleting {
			t.Fatalf("BlobDeleting after EndBlobDelete = %v, %v", deleting, err)
		}
		if deleting, begun := within(d, 0); deleting || begun {
			t.Fatalf("within no time: deleting %v, begun %v", deleting, begun)
		}
		if deleting, begun := within(other, recent); deleting || begun {
			t.Fatalf("another digest: deleting %v, begun %v", deleting, begun)
		}
	}},
	{"LinkBlobConfirmedSeesTombstonesWhenSerial", func(t *testing.T, s storage.Store) {
		lc, isConfirmer := s.(storage.LinkConfirmer)
		if !isConfirmer {
			t.Skipf("%T has no LinkBlobConfirmed", s)
		}
		const repo = "gc/confirm"
		d := dg("confirmed link")
		const recent = time.Minute                  // an age: the store counts it back on its own clock
		link(t, s, repo, dg("confirmed before"), 1) // a repository the store knows
		_, err := s.BeginBlobDelete(ctx(t), []digest.Digest{d})
		ok(t, err, "BeginBlobDelete")
		c, err := lc.LinkBlobConfirmed(ctx(t), repo, d, 5, recent)
		ok(t, err, "LinkBlobConfirmed under a tombstone")
		if c.Serial && (!c.Deleting || !c.Begun) {
			t.Fatalf("LinkBlobConfirmed under a tombstone = %+v, want deleting and begun", c)
		}
		if size, err := s.BlobSize(ctx(t), repo, d); err != nil || size != 5 {
			t.Fatalf("BlobSize after LinkBlobConfirmed = %d, %v", size, err)
		}
		ok(t, s.EndBlobDelete(ctx(t), []digest.Digest{d}), "EndBlobDelete")
		// The ended tombstone (the store keeps it: DeleteHistory) was
		// begun within a recent age; none of a digest never deleted was;
		// a within of 0 is unknown, and always begun.
		for _, tc := range []struct {
			d      digest.Digest
			within time.Duration
			begun  bool
		}{{d, recent, true}, {dg("never deleted link"), recent, false}, {d, 0, true}} {
			again, err := lc.LinkBlobConfirmed(ctx(t), repo, tc.d, 5, tc.within)
			ok(t, err, "LinkBlobConfirmed")
			// Serial is the store's to say, link by link (PostgreSQL's
			// first link into a repository is not pipelined).
			want := storage.LinkCheck{Serial: again.Serial, Begun: again.Serial && tc.begun}
			if again != want {
				t.Fatalf("LinkBlobConfirmed %s within %v after the delete = %+v, want %+v", tc.d, tc.within, again, want)
			}
		}
	}},
	{"GCSweepLinksBatchDecidesEachAlone", func(t *testing.T, s storage.Store) {
		const repo = "gc/batch"
		listed, loose, gone := dg("batch listed"), dg("batch loose"), dg("batch never linked")
		link(t, s, repo, listed, 1)
		link(t, s, repo, loose, 1)
		m := manifest(repo, "batch lists")
		m.Refs = []digest.Digest{listed}
		put(t, s, m, "v1")
		cutoff := afterNow()
		ev := storage.Event{Action: "blob.delete", Target: repo}
		got, err := s.SweepLinks(ctx(t), cutoff, []storage.LinkSweep{
			{Repo: repo, Digest: listed, Events: []storage.Event{ev}},
			{Repo: repo, Digest: loose, Events: []storage.Event{ev}},
			{Repo: repo, Digest: gone},
			{Repo: "gc/no such repository", Digest: loose},
		})
		ok(t, err, "SweepLinks")
		equal(t, got, []bool{false, true, false, false}, "SweepLinks(listed, loose, never linked, other repository)")
		_, err = s.BlobSize(ctx(t), repo, listed)
		ok(t, err, "the listed link")
	}},
	{"GCRunsRecorded", func(t *testing.T, s storage.Store) {
		start := time.Now().UTC().Truncate(time.Millisecond)
		for i := range 3 {
			run := &storage.GCRun{DryRun: i == 1, Trigger: fmt.Sprint("t", i), Started: start, Finished: start.Add(time.Second),
				Counts: storage.GCCounts{Manifests: i, Links: 2 * i, Blobs: 3, Uploads: 1, Bytes: int64(100 * i), Kept: 1}}
			if i == 2 {
				run.Error = "stopped"
			}
			ok(t, s.RecordGCRun(ctx(t), run), "RecordGCRun")
			if run.ID == 0 {
				t.Fatal("RecordGCRun set no ID")
			}
		}
		runs, err := s.GCRuns(ctx(t), 0, 2)
		ok(t, err, "GCRuns")
		if len(runs) != 2 || runs[0].Trigger != "t2" || runs[1].Trigger != "t1" {
			t.Fatalf("GCRuns newest first = %+v", runs)
		}
		r := runs[0]
		if r.Error != "stopped" || r.Counts.Bytes != 200 || r.Counts.Links != 4 || r.DryRun || !runs[1].DryRun ||
			!r.Started.Equal(start) || !r.Finished.Equal(start.Add(time.Second)) {
			t.Fatalf("GCRuns lost fields: %+v", r)
		}
		older, err := s.GCRuns(ctx(t), runs[1].ID, 10)
		ok(t, err, "GCRuns before")
		if len(older) != 1 || older[0].Trigger != "t0" {
			t.Fatalf("GCRuns before %d = %+v", runs[1].ID, older)
		}
	}},
	{"ScrubBadBlobRecordedOnce", func(t *testing.T, s storage.Store) {
		d := dg("rotten")
		_, bad, err := s.BlobBad(ctx(t), d)
		ok(t, err, "BlobBad")
		if bad {
			t.Fatal("BlobBad before any finding")
		}
		if none, err := s.BadBlobs(ctx(t)); err != nil || len(none) != 0 {
			t.Fatalf("BadBlobs before any finding = %v, %v", none, err)
		}
		ev := storage.Event{Action: "blob.corrupt", Target: "blob", Digest: d}
		added, err := s.MarkBlobBad(ctx(t), d, "hashes to x", ev)
		ok(t, err, "MarkBlobBad")
		again, err := s.MarkBlobBad(ctx(t), d, "hashes to y", ev)
		ok(t, err, "MarkBlobBad again")
		if !added || again {
			t.Fatalf("MarkBlobBad added = %v, again = %v; want true, false", added, again)
		}
		detail, bad, err := s.BlobBad(ctx(t), d)
		ok(t, err, "BlobBad")
		if !bad || detail != "hashes to x" {
			t.Fatalf("BlobBad = %q, %v; want the first finding", detail, bad)
		}
		all, err := s.BadBlobs(ctx(t))
		ok(t, err, "BadBlobs")
		if len(all) != 1 || all[d] != "hashes to x" {
			t.Fatalf("BadBlobs = %v", all)
		}
		// Found sound again: the finding goes, once.
		fixed := storage.Event{Action: "blob.repaired", Target: "blob", Digest: d}
		cleared, err := s.ClearBlobBad(ctx(t), d, fixed)
		ok(t, err, "ClearBlobBad")
		again, err = s.ClearBlobBad(ctx(t), d, fixed)
		ok(t, err, "ClearBlobBad again")
		if !cleared || again {
			t.Fatalf("ClearBlobBad cleared = %v, again = %v; want true, false", cleared, again)
		}
		if _, bad, err := s.BlobBad(ctx(t), d); err != nil || bad {
			t.Fatalf("BlobBad after ClearBlobBad = %v, %v", bad, err)
		}
	}},
	// The race the sweep's locks are for: a put that checked its blob
	// while a sweep deletes it. Either the put commits and the link stays
	// (the put's refs keep it), or the sweep commits and the put fails;
	// never a stored manifest whose blob link is gone.
	{"GCSweepRacesPutsSafely", func(t *testing.T, s storage.Store) {
		const repo = "gc/race"
		const rounds = 40
		for i := range rounds {
			b := dg(fmt.Sprint("race blob ", i))
			link(t, s, repo, b, 1)
			m := manifest(repo, fmt.Sprint("race manifest ", i))
			m.Refs = []digest.Digest{b}
			cutoff := afterNow()
			waitPast(cutoff)
			var (
				wg       sync.WaitGroup
				putErr   error
				unlinked bool
				sweepErr error
			)
			wg.Add(2)
			go func() {
				defer wg.Done()
				putErr = s.PutManifest(ctx(t), m, []string{fmt.Sprint("t", i)}, storage.PutManifestOptions{Present: m.Refs})
			}()
			go func() {
				defer wg.Done()
				var res []bool
				res, sweepErr = s.SweepLinks(ctx(t), cutoff, []storage.LinkSweep{{Repo: repo, Digest: b}})
				unlinked = sweepErr == nil && res[0]
			}()
			wg.Wait()
			ok(t, sweepErr, "SweepLink round %d", i)
			_, linkErr := s.BlobSize(ctx(t), repo, b)
			_, mErr := s.GetManifest(ctx(t), repo, m.Digest)
			switch {
			case putErr == nil && (unlinked || linkErr != nil):
				t.Fatalf("round %d: the put committed and the sweep unlinked its blob (link: %v)", i, linkErr)
			case putErr == nil && mErr != nil:
				t.Fatalf("round %d: put succeeded, manifest not stored: %v", i, mErr)
			case putErr != nil && !unlinked:
				t.Fatalf("round %d: put failed (%v) though the sweep kept the link", i, putErr)
			case putErr != nil:
				is(t, putErr, storage.ErrNotFound, "round %d: put after the sweep", i)
			}
		}
	}},
}

// waitPast returns once the wall clock is past t: the store stamps writes
// with it, and a write meant to be after a cutoff must be.
func waitPast(t time.Time) {
	for !time.Now().After(t) {
		time.Sleep(time.Millisecond)
	}
}
