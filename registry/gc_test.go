package registry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// gcWorld is a registry whose clock can be moved past the grace period,
// and its blob store, to see the bytes themselves.
type gcWorld struct {
	reg      *registry.Registry
	blobs    storage.BlobStore
	skew     time.Duration
	observed []storage.GCRun // what the observer saw
}

func newGCWorld(t *testing.T) *gcWorld {
	blobs, meta, _ := teststores.Open(t)
	w := &gcWorld{blobs: blobs}
	w.reg = registry.New(blobs, meta, registry.WithClock(func() time.Time { return time.Now().Add(w.skew) }),
		registry.WithGCObserver(func(rep *registry.GCReport) { w.observed = append(w.observed, rep.GCRun) }))
	return w
}

func (w *gcWorld) itemSet(rep *registry.GCReport) []string {
	var out []string
	for _, it := range rep.Items {
		out = append(out, it.Kind+" "+it.Repo+" "+string(it.Digest)+it.ID)
	}
	slices.Sort(out)
	return out
}

// TestGCCollectsGarbageOnly: untagged manifests, the referrers of
// deleted subjects, an untagged index and its child, blobs nothing lists
// and an idle upload go; what is tagged, listed or signs something kept
// stays and pulls whole. The dry run lists exactly what the run removes.
func TestGCCollectsGarbageOnly(t *testing.T) {
	w := newGCWorld(t)
	h := w.reg
	const repo = "gc/app"
	kept := imageManifest(t, h, repo, []byte("kept layer"), []byte("shared layer"))
	expect(t, putManifest(t, h, repo, "v1", kept, oci.MediaTypeImageManifest), 201, "")
	gone := imageManifest(t, h, repo, []byte("gone layer"), []byte("shared layer"))
	expect(t, putManifest(t, h, repo, sha(gone).String(), gone, oci.MediaTypeImageManifest), 201, "")
	sign := func(subject []byte, note string) []byte {
		l := pushBlob(t, h, repo, []byte(note))
		return mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest,
			"artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
			"config":       desc("application/vnd.oci.empty.v1+json", pushBlob(t, h, repo, []byte("{}")), 2),
			"layers":       []oci.Descriptor{desc("application/json", l, int64(len(note)))},
			"subject":      desc(oci.MediaTypeImageManifest, sha(subject), int64(len(subject)))})
	}
	keptSig, goneSig := sign(kept, "signs kept"), sign(gone, "signs gone")
	for _, s := range [][]byte{keptSig, goneSig} {
		expect(t, putManifest(t, h, repo, sha(s).String(), s, oci.MediaTypeImageManifest), 201, "")
	}
	child := imageManifest(t, h, repo, []byte("child layer"))
	expect(t, putManifest(t, h, repo, sha(child).String(), child, oci.MediaTypeImageManifest), 201, "")
	index := mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageIndex,
		"manifests": []oci.Descriptor{desc(oci.MediaTypeImageManifest, sha(child), int64(len(child)))}})
	expect(t, putManifest(t, h, repo, sha(index).String(), index, oci.MediaTypeImageIndex), 201, "")
	loose := pushBlob(t, h, repo, []byte("loose blob"))
	up := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/", nil)
	expect(t, up, http.StatusAccepted, "")
	upID := up.Header().Get("Docker-Upload-UUID")

	ctx := context.Background()
	// Within the grace period nothing goes.
	rep, err := w.reg.CollectGarbage(ctx, registry.GCOptions{DryRun: true})
	if err != nil || len(rep.Items) != 0 || rep.Counts != (storage.GCCounts{}) {
		t.Fatalf("dry run within the grace period: %+v, %v", rep, err)
	}

	w.skew = 2 * time.Hour
	dry, err := w.reg.CollectGarbage(ctx, registry.GCOptions{DryRun: true, Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"blob  " + string(sha([]byte("child layer"))),
		"blob  " + string(sha([]byte("gone layer"))),
		"blob  " + string(loose),
		"blob  " + string(sha([]byte("signs gone"))),
		"link " + repo + " " + string(sha([]byte("child layer"))),
		"link " + repo + " " + string(sha([]byte("gone layer"))),
		"link " + repo + " " + string(loose),
		"link " + repo + " " + string(sha([]byte("signs gone"))),
		"manifest " + repo + " " + string(sha(child)),
		"manifest " + repo + " " + string(sha(goneSig)),
		"manifest " + repo + " " + string(sha(gone)),
		"manifest " + repo + " " + string(sha(index)),
		"upload " + repo + " " + upID,
	}
	slices.Sort(want)
	if got := w.itemSet(dry); !slices.Equal(got, want) {
		t.Fatalf("dry run lists\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := w.blobs.Stat(ctx, loose); err != nil { // a dry run changes nothing
		t.Fatalf("the dry run deleted %s: %v", loose, err)
	}
	expect(t, do(t, h, "GET", "/v2/"+repo+"/manifests/"+sha(gone).String(), nil), 200, "")

	real, err := w.reg.CollectGarbage(ctx, registry.GCOptions{Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.itemSet(real); !slices.Equal(got, want) {
		t.Fatalf("the run removed\n%s\nwant what the dry run listed\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantBytes := int64(len("child layer") + len("gone layer") + len("loose blob") + len("signs gone"))
	if real.Counts != dry.Counts || real.Counts.Bytes != wantBytes || real.Counts.Kept != 0 {
		t.Fatalf("counts: run %+v, dry %+v, want %d bytes", real.Counts, dry.Counts, wantBytes)
	}
	for _, b := range []string{"child layer", "gone layer", "loose blob", "signs gone"} {
		if _, err := w.blobs.Stat(ctx, sha([]byte(b))); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("bytes of %q still in the blob store: %v", b, err)
		}
	}
	for _, m := range [][]byte{gone, goneSig, index, child} {
		expect(t, do(t, h, "GET", "/v2/"+repo+"/manifests/"+sha(m).String(), nil), 404, "MANIFEST_UNKNOWN")
	}
	expect(t, do(t, h, "PATCH", "/v2/"+repo+"/blobs/uploads/"+upID, []byte("x")), 404, "BLOB_UPLOAD_UNKNOWN")
	// What stays pulls whole.
	expect(t, do(t, h, "GET", "/v2/"+repo+"/manifests/v1", nil), 200, "")
	for _, b := range []string{"kept layer", "shared layer", "{}", "signs kept"} {
		expect(t, do(t, h, "GET", "/v2/"+repo+"/blobs/"+sha([]byte(b)).String(), nil), 200, "")
	}
	refs := do(t, h, "GET", "/v2/"+repo+"/referrers/"+sha(kept).String(), nil)
	if !strings.Contains(refs.Body.String(), sha(keptSig).String()) {
		t.Fatalf("the signature of the kept manifest went: %s", refs.Body.String())
	}
	runs, err := w.reg.GCRuns(ctx, 0, 10)
	if err != nil || len(runs) != 3 || runs[0].ID != real.ID || runs[0].DryRun || runs[0].Counts != real.Counts || !runs[1].DryRun {
		t.Fatalf("recorded runs %+v, %v", runs, err)
	}
	if len(w.observed) != 3 || w.observed[2] != runs[0] {
		t.Fatalf("the observer saw %+v, want the 3 recorded runs", w.observed)
	}
	// A second run finds nothing left.
	again, err := w.reg.CollectGarbage(ctx, registry.GCOptions{})
	if err != nil || again.Counts != (storage.GCCounts{}) {
		t.Fatalf("second run: %+v, %v", again.Counts, err)
	}
}

// TestGCPushOfACollectedBlobIsNotAcknowledgedWithoutItsBytes: a push
// that links a digest while a collection deletes its bytes (the tombstone
// is up) is not acknowledged when the bytes went: it answers 503 and the
// link goes, so no manifest can be pushed on bytes that are gone.
func TestGCPushOfACollectedBlobIsNotAcknowledgedWithoutItsBytes(t *testing.T) {
	blobs, meta, _ := teststores.Open(t)
	h := registry.New(blobs, meta)
	const repo = "gc/tomb"
	b := []byte("collected under the push")
	d := sha(b)
	ctx := context.Background()
	// The collector's side: tombstone up, bytes gone (the blob was never
	// stored here: the same as after its delete), tombstone down later.
	free, err := meta.BeginBlobDelete(ctx, []digest.Digest{d})
	if err != nil || !free[0] {
		t.Fatalf("BeginBlobDelete: %v %v", free, err)
	}
	done := make(chan *http.Response, 1)
	go func() {
		rec := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), b)
		done <- rec.Result()
	}()
	// The collector deletes the bytes the push's Commit published, then ends.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := blobs.Delete(ctx, d)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the push never published its bytes: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := meta.EndBlobDelete(ctx, []digest.Digest{d}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("push answered %d, want 503", r.StatusCode)
	}
	// The client is told to push again, not that storage is down.
	if body, _ := io.ReadAll(r.Body); !strings.Contains(string(body), "push it again") {
		t.Fatalf("the 503 says %s; want it to say the blob must be pushed again", body)
	}
	if _, err := meta.BlobSize(ctx, repo, d); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the link stayed without its bytes: %v", err)
	}
	// Pushed again, it is stored anew.
	pushBlob(t, h, repo, b)
	expect(t, do(t, h, "GET", "/v2/"+repo+"/blobs/"+d.String(), nil), 200, "")
}

// statFlaky is a blob store whose Stat of one digest fails its first
// fails calls as a backend that is briefly unavailable does.
type statFlaky struct {
	storage.BlobStore
	d     digest.Digest
	fails int
}

func (s *statFlaky) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	if d == s.d && s.fails > 0 {
		s.fails--
		return 0, storage.ErrUnavailable
	}
	return s.BlobStore.Stat(ctx, d)
}

// TestGCBytesCheckOutlastsABriefOutage: the look at the bytes after a
// link (confirmLinked) is retried through a brief backend outage. A
// failed look used to fail the push with 503 while its link stayed, so a
// refused push left a visible blob (TestS3Faults saw it on S3).
func TestGCBytesCheckOutlastsABriefOutage(t *testing.T) {
	blobs, meta, _ := teststores.Open(t)
	b := []byte("looked at through an outage")
	d := sha(b)
	h := registry.New(&statFlaky{BlobStore: blobs, d: d, fails: 2}, meta)
	expect(t, do(t, h, "POST", "/v2/gc/outage/blobs/uploads/?digest="+d.String(), b), 201, "")
	expect(t, do(t, h, "GET", "/v2/gc/outage/blobs/"+d.String(), nil), 200, "")
}

// TestBlobDeleteFreesBytesNoRepositoryLinks: DELETE of a blob deletes its
// bytes once no repository links it, and only then.
func TestBlobDeleteFreesBytesNoRepositoryLinks(t *testing.T) {
	blobs, meta, _ := teststores.Open(t)
	h := registry.New(blobs, meta)
	b := []byte("linked twice")
	d := pushBlob(t, h, "gc/one", b)
	pushBlob(t, h, "gc/two", b)
	ctx := context.Background()
	expect(t, do(t, h, "DELETE", "/v2/gc/one/blobs/"+d.String(), nil), 202, "")
	if _, err := blobs.Stat(ctx, d); err != nil {
		t.Fatalf("bytes gone while gc/two links them: %v", err)
	}
	expect(t, do(t, h, "GET", "/v2/gc/two/blobs/"+d.String(), nil), 200, "")
	expect(t, do(t, h, "DELETE", "/v2/gc/two/blobs/"+d.String(), nil), 202, "")
	if _, err := blobs.Stat(ctx, d); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("bytes still stored with no link left: %v", err)
	}
}

// TestScrubFindsAndRefusesBadBytes: a scrub finds a blob whose stored
// bytes were altered, and from then on every read of it is 500 UNKNOWN
// before any byte (HEAD 404); the other blobs serve as before. Once the
// bytes are restored, a scrub clears the finding and the blob serves
// again.
func TestScrubFindsAndRefusesBadBytes(t *testing.T) {
	blobs, meta, dir := teststores.Open(t)
	var scrubs []int
	h := registry.New(blobs, meta, registry.WithScrubObserver(func(rep *registry.ScrubReport, _ time.Duration, err error) {
		if err == nil {
			scrubs = append(scrubs, len(rep.Bad))
		}
	}))
	const repo = "scrub/app"
	good := pushBlob(t, h, repo, []byte("good bytes"))
	bad := pushBlob(t, h, repo, []byte("bytes to rot"))
	p := blobFile(dir, bad)
	b := rot(t, p)
	ctx := context.Background()
	rep, err := h.Scrub(ctx, 1<<30)
	if err != nil || rep.Blobs != 2 || len(rep.Bad) != 1 || rep.Bad[0] != bad {
		t.Fatalf("scrub: %+v, %v", rep, err)
	}
	for _, m := range []string{"GET", "HEAD"} {
		w := do(t, h, m, "/v2/"+repo+"/blobs/"+bad.String(), nil)
		if m == "GET" {
			expect(t, w, 500, "UNKNOWN")
		} else if w.Code != 404 {
			// Unknown, so that a client's push sends the bytes again.
			t.Fatalf("HEAD of a bad blob: %d, want 404", w.Code)
		}
		if bytes.Contains(w.Body.Bytes(), b) {
			t.Fatal("the bad bytes were sent")
		}
	}
	if _, _, err := h.OpenBlob(ctx, repo, bad); err == nil {
		t.Fatal("OpenBlob of a bad blob succeeded")
	}
	expect(t, do(t, h, "GET", "/v2/"+repo+"/blobs/"+good.String(), nil), 200, "")
	// A second scrub knows it already.
	rep, err = h.Scrub(ctx, 1<<30)
	if err != nil || rep.Blobs != 2 || rep.Skipped != 0 || len(rep.Bad) != 0 || len(rep.Repaired) != 0 {
		t.Fatalf("second scrub: %+v, %v", rep, err)
	}
	if len(scrubs) != 2 || scrubs[0] != 1 || scrubs[1] != 0 {
		t.Fatalf("the observer saw %v, want [1 0] bad blobs", scrubs)
	}
	b[0] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = h.Scrub(ctx, 1<<30)
	if err != nil || len(rep.Bad) != 0 || len(rep.Repaired) != 1 || rep.Repaired[0] != bad {
		t.Fatalf("scrub of the restored blob: %+v, %v", rep, err)
	}
	expect(t, do(t, h, "GET", "/v2/"+repo+"/blobs/"+bad.String(), nil), 200, "")
}

// TestGCCollectsOrphanedBytes: bytes in the blob store that no repository
// links (a crash between a commit and its link leaves them) go once older
// than the grace period, listed by the dry run; linked bytes stay.
func TestGCCollectsOrphanedBytes(t *testing.T) {
	w := newGCWorld(t)
	h := w.reg
	const repo = "gc/orphans"
	kept := imageManifest(t, h, repo, []byte("kept layer"))
	expect(t, putManifest(t, h, repo, "v1", kept, oci.MediaTypeImageManifest), 201, "")
	ctx := context.Background()
	orphan := []byte("committed, never linked")
	now := time.Now().UTC()
	u := &storage.Upload{ID: "orphan-upload", Repo: repo, Algorithm: digest.SHA256, Created: now, Updated: now}
	if err := w.blobs.Append(ctx, u, bytes.NewReader(orphan)); err != nil {
		t.Fatal(err)
	}
	od := digest.FromBytes(digest.SHA256, orphan)
	if err := w.blobs.Commit(ctx, u, od); err != nil {
		t.Fatal(err)
	}

	young, err := w.reg.CollectGarbage(ctx, registry.GCOptions{DryRun: true})
	if err != nil || len(young.Items) != 0 {
		t.Fatalf("orphan within the grace period listed: %+v, %v", young.Items, err)
	}
	w.skew = 2 * time.Hour
	want := []string{"blob  " + string(od)}
	dry, err := w.reg.CollectGarbage(ctx, registry.GCOptions{DryRun: true})
	if got := w.itemSet(dry); err != nil || !slices.Equal(got, want) {
		t.Fatalf("dry run lists %v (%v), want %v", got, err, want)
	}
	real, err := w.reg.CollectGarbage(ctx, registry.GCOptions{})
	if got := w.itemSet(real); err != nil || !slices.Equal(got, want) || real.Counts.Bytes != int64(len(orphan)) {
		t.Fatalf("run removed %v, %+v (%v), want %v", got, real.Counts, err, want)
	}
	if _, err := w.blobs.Stat(ctx, od); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("orphaned bytes still stored: %v", err)
	}
	if _, err := w.blobs.Stat(ctx, sha([]byte("kept layer"))); err != nil {
		t.Fatalf("linked bytes gone: %v", err)
	}
	expect(t, do(t, h, "GET", "/v2/"+repo+"/blobs/"+sha([]byte("kept layer")).String(), nil), 200, "")
}
