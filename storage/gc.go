package storage

import (
	"context"
	"strings"
	"time"

	"github.com/packreg/packreg/digest"
)

// TombstoneTTL bounds a blob delete under a tombstone (BeginBlobDelete):
// the deleter gives up on the blob store delete after half of it, and a
// tombstone older than it no longer holds writers back. A store ages its
// tombstones by one clock for every replica (sqlmeta: the database's), so
// replicas' clocks need not agree.
const TombstoneTTL = 2 * time.Minute

// GCManifest is what the garbage collector's mark phase reads of one
// manifest: never its payload.
type GCManifest struct {
	Repo    string
	Digest  digest.Digest
	Size    int64
	Subject digest.Digest
	Refs    []digest.Digest
	Tagged  bool
	// Pushed is the last time a put stored or re-stored this digest in
	// Repo (not Created, which a re-push keeps): the grace period counts
	// from it.
	Pushed time.Time
}

// GCLink is one blob linked into one repository.
type GCLink struct {
	Repo   string
	Digest digest.Digest
	Size   int64
	// Linked is the last time an upload or a mount linked it.
	Linked time.Time
}

// LinkSweep is one blob link a collection proposes to remove, with the
// events its removal records.
type LinkSweep struct {
	Repo   string
	Digest digest.Digest
	Events []Event
}

// GCRun is the record of one garbage collection.
type GCRun struct {
	ID       int64
	DryRun   bool
	Trigger  string // "api", "schedule"
	Started  time.Time
	Finished time.Time
	// Error is why the run stopped early ("" when it completed; see
	// RunError).
	Error  string
	Counts GCCounts
}

// interruptedPrefix starts the Error of a run its context ended.
const interruptedPrefix = "interrupted: "

// RunError is the Error to record for a run (GC, retention) that ended
// with err: when ctx ended first (shutdown, a lost lease) it says
// "interrupted", which RunInterrupted tells from a failure, since a later
// run carries on.
func RunError(ctx context.Context, err error) string {
	if err == nil {
		return ""
	}
	if ctx.Err() != nil {
		return interruptedPrefix + err.Error()
	}
	return err.Error()
}

// RunInterrupted says whether a run's recorded Error (RunError) is an
// interruption rather than a failure.
func RunInterrupted(errText string) bool { return strings.HasPrefix(errText, interruptedPrefix) }

// GCCounts is what a run collected (or, dry, would collect).
type GCCounts struct {
	Manifests int   `json:"manifests"`
	Links     int   `json:"links"`
	Blobs     int   `json:"blobs"`
	Uploads   int   `json:"uploads"`
	Bytes     int64 `json:"bytes"` // blob bytes freed in the blob store, plus manifest payloads
	Kept      int   `json:"kept"`  // candidates the sweep's re-check kept
}

// Collector is the metadata store's part of online garbage collection.
// The mark phase reads everything (GCManifests, GCLinks) without locks;
// every delete re-checks, in its own transaction, that what it deletes is
// still garbage, so pushes go on during a run. The rules a re-check
// applies are the rules of the mark: the store enforces them, the caller
// only proposes.
type Collector interface {
	// GCManifests calls fn for every manifest of every repository.
	GCManifests(ctx context.Context, fn func(GCManifest) error) error
	// GCLinks calls fn for every blob link.
	GCLinks(ctx context.Context, fn func(GCLink) error) error
	// SweepManifest deletes manifest d of repo if, in the delete's
	// transaction, it was last pushed before cutoff, has no tag, no
	// manifest of repo lists it in its refs, and its subject (if any) is
	// not stored in repo. It reports whether it deleted; o is recorded
	// only then.
	SweepManifest(ctx context.Context, repo string, d digest.Digest, cutoff time.Time, o DeleteOptions) (bool, error)
	// SweepLinks proposes the removal of links, in one transaction: each
	// is unlinked if, in it, it was last linked before cutoff and no
	// manifest of its repository lists it; its Events are recorded only
	// then. It reports, in order, which it unlinked.
	SweepLinks(ctx context.Context, cutoff time.Time, ls []LinkSweep) ([]bool, error)
	// BeginBlobDelete marks the bytes of ds as being deleted (tombstones,
	// one transaction), then reports, in order, whether no repository
	// links each. Only for those may the caller delete the bytes; it
	// calls EndBlobDelete after, for all of ds. A writer that links a
	// digest waits, after its link commits, while BlobDeleting, then
	// looks for the bytes: either the collector's read of the links sees
	// the link, or the writer's look comes after the delete (both write,
	// then read).
	BeginBlobDelete(ctx context.Context, ds []digest.Digest) ([]bool, error)
	// EndBlobDelete takes the tombstones of ds down (a store with
	// DeleteHistory keeps them, ended).
	EndBlobDelete(ctx context.Context, ds []digest.Digest) error
	// BlobDeleting reports whether d's bytes are being deleted: a
	// tombstone younger than TombstoneTTL (an older one was left by a
	// crash, and counts as gone).
	BlobDeleting(ctx context.Context, d digest.Digest) (bool, error)
	// RecordGCRun stores a finished run and sets its ID.
	RecordGCRun(ctx context.Context, run *GCRun) error
	// GCRuns returns up to n runs, newest first, with ID < before (0: from
	// the newest).
	GCRuns(ctx context.Context, before int64, n int) ([]GCRun, error)

	// MarkBlobBad records that blob d's stored bytes do not match d (a
	// scrub's finding), with evs; marking it again changes nothing and
	// records nothing. It reports whether it was new.
	MarkBlobBad(ctx context.Context, d digest.Digest, detail string, evs ...Event) (bool, error)
	// ClearBlobBad removes the finding about d, with evs, once a scrub
	// finds its bytes sound again (restored, or written again); it
	// reports whether there was one, and records nothing when not.
	ClearBlobBad(ctx context.Context, d digest.Digest, evs ...Event) (bool, error)
	// BlobBad returns the finding about d, ok false when there is none.
	BlobBad(ctx context.Context, d digest.Digest) (detail string, ok bool, err error)
	// BadBlobs returns every blob found bad, with its finding (a handful
	// at most, in a sane registry: what compliance reads once per pass).
	BadBlobs(ctx context.Context) (map[digest.Digest]string, error)
}

// DeleteHistory is an optional Collector ability: EndBlobDelete keeps
// each tombstone, ended, for at least 3*TombstoneTTL, and
// BlobDeletingWithin is BlobDeleting that also reports whether a
// tombstone of d, ended or not, was put up within the last `within` (at
// most 2*TombstoneTTL) by the store's clock.
//
// A writer that wrote d's bytes, then linked d, learns from one read
// after its link that no collection can have deleted them: a delete
// starts under a tombstone and ends within TombstoneTTL/2 of it, so one
// that could delete those bytes put its tombstone up within the time
// since the writing began plus TombstoneTTL. The writer measures that
// time on its own clock and the store counts it back on its own: no two
// clocks are compared. With no tombstone within, the writer needs no look
// at the bytes (on S3 a HeadObject, a tenth of a small push's CPU).
type DeleteHistory interface {
	BlobDeletingWithin(ctx context.Context, d digest.Digest, within time.Duration) (deleting, begun bool, err error)
}

// LinkConfirmer is an optional Metadata ability: LinkBlobConfirmed links
// like LinkBlob and, when Serial is true, tells in the same transaction,
// after the link, whether d's bytes are being deleted (BlobDeleting's
// answer) and, for a within that is not zero, whether a tombstone of d
// was put up within it (DeleteHistory's begun; always true for zero),
// saving the writer its read after the commit and, with none begun, its
// look at the bytes.
//
// That read may move into the link's transaction only where write
// transactions are serial (SQLite: one writer, each transaction begun
// holding the write lock): a collection's tombstones then commit wholly
// before the link's transaction (seen by it) or after it (and the
// collector's read of the links, later still, sees the link). Where
// transactions overlap (PostgreSQL, read committed), a tombstone
// committed while the link's transaction runs is seen by neither side:
// the read must come after the commit. A store that sends it right
// behind its COMMIT, in the same round trip (PostgreSQL's pipeline),
// answers with Serial true too; otherwise Serial is false, and the
// writer asks BlobDeleting after the commit.
type LinkConfirmer interface {
	LinkBlobConfirmed(ctx context.Context, repo string, d digest.Digest, size int64, within time.Duration, evs ...Event) (LinkCheck, error)
}

// LinkCheck is what LinkBlobConfirmed learned; Deleting and Begun mean
// something only when Serial is true.
type LinkCheck struct {
	Serial, Deleting, Begun bool
}
