package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
)

// Sentinel errors. Backends wrap them with %w; callers test with errors.Is.
var (
	// ErrNotFound: no such blob, manifest, tag, repository or upload.
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict: a compare-and-swap lost to a concurrent writer (an upload
	// offset moved, say). The caller reports it; it never retries blindly.
	ErrConflict = errors.New("storage: conflict")
	// ErrDigestMismatch: committed data does not hash to the claimed digest.
	ErrDigestMismatch = errors.New("storage: digest mismatch")
	// ErrUnavailable: the backend is down or overloaded; the request may be
	// retried later (HTTP 503).
	ErrUnavailable = errors.New("storage: backend unavailable")
	// ErrUploadLost: an upload's data did not survive a restart of the
	// machine (BlobStore.Append); it is ErrNotFound too. The session is
	// over: the client starts a new upload.
	ErrUploadLost = fmt.Errorf("%w: upload data lost in a restart of the machine", ErrNotFound)
)

// BlobStore holds immutable content-addressed blobs and the data of
// in-progress uploads. A blob becomes visible (Stat, Open) only when Commit
// has verified its digest and made it durable; it is never visible half
// written.
type BlobStore interface {
	// Stat returns the size of a committed blob, or ErrNotFound.
	Stat(ctx context.Context, d digest.Digest) (int64, error)
	// Open returns the blob's bytes from offset to the end, or ErrNotFound.
	Open(ctx context.Context, d digest.Digest, offset int64) (io.ReadCloser, error)
	// Delete removes a committed blob; ErrNotFound if it is absent.
	Delete(ctx context.Context, d digest.Digest) error

	// Append writes r after u.Offset and on success advances u.Offset,
	// u.HashState and u.Backend. u.HashState may cover fewer than
	// u.Offset bytes (the hash still running when Append returns) if the
	// store records in u.Backend how many, hashes the rest from its data
	// before it trusts them (the next Append or Commit, in any process),
	// proves a replayed Commit from such a state itself (ProveCommitted
	// needs a state of all the bytes), and says how many (HashLagger). The bytes must survive the process and be
	// readable by any process that gets u; they need not survive a restart
	// of the machine before Commit, but then Append and Commit must fail
	// with ErrUploadLost rather than trust bytes that may have changed. Data already past u.Offset (from a
	// crashed or interrupted earlier attempt) is discarded first. On error u is
	// unchanged and the upload can be resumed from u.Offset; the error wraps
	// the reader's or the context's error when one of them caused it, so the
	// caller can tell a client that hung up from a storage failure. The first
	// Append of an upload creates its data.
	Append(ctx context.Context, u *Upload, r io.Reader) error
	// Commit verifies that the upload's data hashes to d and publishes it as
	// blob d (ErrDigestMismatch otherwise; the upload data is then discarded).
	// When blob d already exists the data is still verified (a wrong claim
	// must not link someone else's blob), then discarded, and Commit
	// succeeds; unless its stored bytes are bad (StoredBad): the verified
	// data then replaces them.
	// An upload with no Append at all commits as the empty blob. After Commit
	// the upload is gone from the store.
	Commit(ctx context.Context, u *Upload, d digest.Digest) error
	// Abort discards the upload's data. Aborting an unknown upload is not an error.
	Abort(ctx context.Context, u *Upload) error
}

// Redirector is an optional BlobStore ability: a URL the client may fetch
// the blob from directly (an S3 presigned GET, for example). ok is false when
// the store declines for this blob.
type Redirector interface {
	RedirectURL(ctx context.Context, d digest.Digest) (url string, ok bool, err error)
}

// BlobSender is an optional ability of a body BlobStore.Open returned:
// it sends up to n of its next bytes to w more cheaply than Read and
// Write would (an S3 store splices them from its socket to w's inside the
// kernel, through w's io.ReaderFrom). It may send fewer, none when it
// cannot for this body or this writer, without an error: the caller
// reads the rest. An error means the body or w failed.
type BlobSender interface {
	SendTo(w io.Writer, n int64) (int64, error)
}

// BlobWalker is an optional BlobStore ability: it calls fn for every
// committed blob, in no set order, with its size and when its bytes were
// last written; uploads in progress are not blobs. GC uses it to find
// bytes no repository links (a crash between a commit and its link
// leaves them). A blob deleted or committed during the walk may or may
// not be seen. An error of fn ends the walk and is returned.
type BlobWalker interface {
	WalkBlobs(ctx context.Context, fn func(d digest.Digest, size int64, written time.Time) error) error
}

// BlobPutter is an optional BlobStore ability: store a whole blob in one
// call, without an upload session (a monolithic POST ?digest=), for less
// than Append then Commit cost on the store: no session data to keep
// findable, so no second open and no fsync of its name. The contract is
// Commit's: r must hash to d (ErrDigestMismatch otherwise, nothing kept),
// the blob is durable and verified before Put returns, and a blob d that
// exists already is left alone (replaced when StoredBad says so). It returns the number of bytes read; on an
// error from r it wraps that error, and nothing is kept.
type BlobPutter interface {
	Put(ctx context.Context, d digest.Digest, r io.Reader) (int64, error)
}

// Remainder is an optional ability of the reader handed to
// BlobStore.Append or BlobPutter.Put: Remaining is how many bytes it
// will still give if its sender keeps its word (a request's
// Content-Length), -1 when unknown. A store may start writing those bytes
// out before it has them all; a reader that ends early still fails the
// call, or ends it short, as any reader would.
type Remainder interface {
	Remaining() int64
}

// Remaining is r's Remaining, or -1 when r is no Remainder.
func Remaining(r io.Reader) int64 {
	if rr, ok := r.(Remainder); ok {
		return rr.Remaining()
	}
	return -1
}

// UploadChecker is an optional BlobStore ability: say whether u's data is
// still all there, so an upload's status never claims bytes a restart of
// the machine took (ErrUploadLost then). Cheap unless the machine
// restarted since the data was written.
type UploadChecker interface {
	CheckUpload(ctx context.Context, u *Upload) error
}

// HashLagger is an optional ability of a BlobStore whose Append may
// return before the hash of its bytes is done (BlobStore.Append):
// HashedUpTo is how many of u's bytes u.HashState covers. Nothing needs
// the hash of all the bytes recorded before Commit: the store hashes the
// rest itself, from its data or, on a replay, from the published blob.
type HashLagger interface {
	HashedUpTo(u *Upload) int64
}

// UploadPurger is an optional BlobStore ability: remove the stored data of
// uploads whose last write is before cutoff, including leftovers of
// crashed attempts that no Upload names (S3 incomplete multipart uploads,
// for example). It returns how many uploads it purged. The caller picks a
// cutoff well before the oldest live session's last write, or live data
// is lost; the registry's janitor uses twice the upload session TTL.
type UploadPurger interface {
	PurgeUploads(ctx context.Context, cutoff time.Time) (int, error)
}

// Upload is the durable state of one blob upload session. The registry keeps
// it in the metadata store between requests, so any replica can take the
// next chunk.
type Upload struct {
	ID   string // random UUID, bound to Repo
	Repo string
	// Offset is the number of bytes received (see BlobStore.Append for how
	// durably).
	Offset int64
	// Algorithm is the hash run while streaming (sha256 unless the client
	// announced another digest up front). Commit re-reads the data when the
	// final digest uses another algorithm.
	Algorithm string
	// HashState is the MarshalBinary state of the running hash after Offset
	// bytes, or after fewer on a store whose hash runs behind its Append
	// (HashLagger; the store's Backend says how many).
	HashState []byte
	// Backend is opaque state of the BlobStore (S3 multipart id and parts...).
	Backend []byte
	Created time.Time
	Updated time.Time
}

// Manifest is one manifest of one repository, stored byte-exact.
type Manifest struct {
	Repo      string
	Digest    digest.Digest
	MediaType string
	// ArtifactType is the manifest's artifactType, else its config media type
	// (empty for indexes without one): what the referrers API reports.
	ArtifactType string
	Size         int64
	Payload      []byte
	// Subject is the digest of the manifest's subject, empty when none.
	Subject     digest.Digest
	Annotations map[string]string
	// Refs are the digests this manifest references (config, layers, child
	// manifests), kept for deletion checks and garbage collection.
	Refs []digest.Digest
	// IndexDepth is how many levels of index the manifest is: 0 for an
	// image manifest, 1 + its deepest child's for an index. The registry
	// sets it at push from its children's records, so a depth cap costs one
	// lookup per child, never a walk.
	IndexDepth int
	// Created is when this digest was first pushed to this repository. A
	// put sets it (now when zero) only the first time: deleting the
	// manifest and pushing it again keeps it, so nothing that counts from
	// a push (a signing window) starts over.
	Created time.Time
}

// ClaimMode says what a manifest put does with a claimed tag.
type ClaimMode int

const (
	// ClaimCheck refuses the put if the tag is claimed by another digest,
	// and claims nothing.
	ClaimCheck ClaimMode = iota + 1
	// ClaimBind claims the tag for the manifest's digest if nothing has
	// claimed it yet, and refuses the put if another digest has.
	ClaimBind
	// ClaimRebind claims the tag for the manifest's digest, whatever it
	// was claimed for before (tags that may move, kept on record).
	ClaimRebind
)

// TagClaim asks PutManifest to guard one of the tags it writes. A claim
// binds a tag to a digest beyond the tag itself: it survives DeleteTag and
// DeleteManifest, so a tag once bound is never reused for other content.
// Pack versions are claimed this way (immutable versions).
type TagClaim struct {
	Tag  string
	Mode ClaimMode
}

// PutManifestOptions is what a PutManifest does in its transaction besides
// storing the manifest and its tags. The zero value asks for nothing.
type PutManifestOptions struct {
	// Claims guard tags of the put (each Tag among its tags), checked and
	// taken in the transaction: of concurrent puts binding one tag to
	// different digests exactly one succeeds, and a put refused by a
	// claim changes nothing (no event recorded either) and returns a
	// *ClaimError.
	Claims []TagClaim
	// Events are recorded in the outbox with the change (Blobs explains
	// them).
	Events []Event
	// Index is what the change does to the pack index (IndexChanges).
	Index IndexChanges
	// TagWas makes the put conditional: each Tag (one of the put's tags)
	// must point at Digest when the put writes it, or be absent when
	// Digest is "". A put whose condition no longer holds (a concurrent
	// put moved the tag) changes nothing and returns a *TagMovedError: a
	// read-modify-write of a tag cannot lose another writer's change.
	TagWas []TagState
	// Present are digests the manifest references that must still be in
	// its repository when the put commits, each a linked blob or a stored
	// manifest. The put locks them, so a garbage collection cannot remove
	// one between the registry's check and the commit; one already gone
	// fails the put with a *RefGoneError.
	//
	// The put looks for an index's Present among the repository's
	// manifests first, for any other manifest's among its blobs first.
	Present []digest.Digest
	// CheckPresent, when set, is shown what the put found of each of
	// Present, in Present's order, once it holds them and before it
	// writes anything: the one read of them a push needs. Its error fails
	// the put (wrapped), and one not found is its to refuse: the put
	// returns no *RefGoneError then. The put writes the manifest after it,
	// so it may complete the manifest from what it found (an index's
	// depth). A retried put calls it again.
	CheckPresent func([]PresentRef) error
	// PresentBlobSizes, when set (one for each of Present), says that
	// CheckPresent accepts, and changes nothing of the manifest, when each
	// of Present is found a linked blob of that size: the put may check
	// that in the database itself, with no read of them first, and call
	// CheckPresent only when it finds otherwise (an image manifest's
	// config and layers, with the sizes their descriptors claim).
	PresentBlobSizes []int64
}

// PresentRef is what a put found of one of its Present digests.
type PresentRef struct {
	Digest digest.Digest
	// Size is that of the blob or manifest found, -1 when neither is
	// in the repository.
	Size int64
	// Manifest: a manifest stored in the repository, not a linked blob.
	Manifest bool
	// IndexDepth is a manifest's (Manifest.IndexDepth).
	IndexDepth int
}

// RefGoneError is the error of a put one of whose Present digests is no
// longer in the repository. It matches ErrNotFound.
type RefGoneError struct {
	Repo   string
	Digest digest.Digest
}

func (e *RefGoneError) Error() string {
	return fmt.Sprintf("%s is no longer in repository %s", e.Digest, e.Repo)
}

func (e *RefGoneError) Is(target error) bool { return target == ErrNotFound }

// TagState is a tag and the digest it points at ("": no such tag).
type TagState struct {
	Tag    string
	Digest digest.Digest
}

// TagMovedError is the error of a put whose TagWas no longer holds. It
// matches ErrConflict: read the tag again and retry.
type TagMovedError struct {
	Repo, Tag string
	Want      digest.Digest // what the put expected ("" : absent)
}

func (e *TagMovedError) Error() string {
	want := e.Want.String()
	if want == "" {
		want = "absent"
	}
	return fmt.Sprintf("tag %s of %s is no longer %s", e.Tag, e.Repo, want)
}

func (e *TagMovedError) Is(target error) bool { return target == ErrConflict }

// DeleteOptions is what a DeleteManifest or DeleteTag does in its
// transaction besides the delete: the outbox events of the change and
// what it does to the pack index. The zero value asks for nothing.
type DeleteOptions struct {
	Events []Event
	Index  IndexChanges
}

// ClaimError is the error of a put refused by a claim. It matches
// ErrConflict: a conditional write lost, to an earlier or a concurrent one.
type ClaimError struct {
	Repo, Tag string
	Claimed   digest.Digest // the digest the tag is bound to
}

func (e *ClaimError) Error() string {
	return fmt.Sprintf("tag %s of %s is claimed by %s", e.Tag, e.Repo, e.Claimed)
}

func (e *ClaimError) Is(target error) bool { return target == ErrConflict }

// Metadata is the registry's part of the metadata store: repositories,
// blob links, manifests, tags and uploads, with the leases and the outbox
// every writer shares.
type Metadata interface {
	Repositories
	Blobs
	Manifests
	Tags
	Uploads
	Leases
	Outbox
	Collector // online garbage collection (gc.go)
	Close() error
}

// Store is the whole metadata store: the registry's part and the records
// of every package above it, one small role each. Every role is required
// and a backend implements them all (storage/sqlmeta asserts it at compile
// time), so a role missing is a compile error, not a failed start. Only
// the wiring (cmd) holds a Store; a package asks for the roles it uses.
type Store interface {
	Metadata
	Packs    // pack versions and lifecycle (packs.go)
	AuditLog // the hash-chained trail (audit.go)
	Attest   // keys and signature records (attest.go)
	Remotes  // mirrors and upstreams (mirror.go)
	Runs     // their sync and parity runs
	Parity   // their parity checks
	Bundles  // offline bundle imports and chains (bundles.go)
	Robots   // robot accounts of package auth (robots.go)
	// Compliance: findings, rules and snapshots (compliance.go)
	Compliance
	RetentionRuns // the record of package retention's runs (retention.go)
}

// Pinger is an optional ability of a metadata or blob store: answer
// quickly whether its backend is reachable (a database round trip, an S3
// HeadBucket). Readiness probes ask it; a store without it is taken as
// ready.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Repositories are created implicitly by the first blob link or manifest put.
type Repositories interface {
	// RepositoryExists reports whether repo holds any blob, manifest or tag.
	RepositoryExists(ctx context.Context, repo string) (bool, error)
	// ListRepositories returns up to n names in byte order, all > last.
	ListRepositories(ctx context.Context, last string, n int) ([]string, error)
}

// The writing methods below take the Events the change stands for
// (PutManifest in its PutManifestOptions) and record them in the outbox
// (Outbox) in the same transaction, so whatever follows from a change (its
// audit record, signature indexing) cannot be lost to a crash after it.
// Events are recorded only when the change is.

// Blobs records which repositories may serve which blobs.
type Blobs interface {
	// LinkBlob makes d readable through repo. Linking twice is not an error.
	LinkBlob(ctx context.Context, repo string, d digest.Digest, size int64, evs ...Event) error
	// BlobSize returns the size of d as linked into repo, or ErrNotFound.
	BlobSize(ctx context.Context, repo string, d digest.Digest) (int64, error)
	// BlobSizes is BlobSize of each of ds, in their order, -1 for one not
	// linked into repo: the references of a manifest in one read, not one
	// per blob.
	BlobSizes(ctx context.Context, repo string, ds []digest.Digest) ([]int64, error)
	// UnlinkBlob removes d from repo (the bytes stay for GC); ErrNotFound if absent.
	UnlinkBlob(ctx context.Context, repo string, d digest.Digest, evs ...Event) error
	// FindBlob returns some repository that has d linked, and its size, or ErrNotFound.
	FindBlob(ctx context.Context, d digest.Digest) (repo string, size int64, err error)
}

// Manifests stores manifests and the referrers index derived from them.
type Manifests interface {
	// PutManifest stores m (or keeps it, when its digest is already stored in
	// m.Repo) and points each of tags at it, all in one transaction, with
	// what o asks for: its claims and its events (PutManifestOptions).
	PutManifest(ctx context.Context, m *Manifest, tags []string, o PutManifestOptions) error
	// GetManifest returns the manifest with its payload, or ErrNotFound.
	GetManifest(ctx context.Context, repo string, d digest.Digest) (*Manifest, error)
	// GetTaggedManifest returns the manifest tag points at, as ResolveTag
	// then GetManifest would, in one read (a pull by tag); ErrNotFound when
	// the tag is unknown.
	GetTaggedManifest(ctx context.Context, repo, tag string) (*Manifest, error)
	// GetManifestBody is GetTaggedManifest of tag, or GetManifest of d
	// when tag is empty, reading only what a pull answers with: Repo,
	// Digest, MediaType, Size and Payload (the annotations, references
	// and subject of the full read were a tenth of a pull's CPU to
	// decode, for nothing the pull serves).
	GetManifestBody(ctx context.Context, repo, tag string, d digest.Digest) (*Manifest, error)
	// DeleteManifest removes the manifest and every tag pointing at it (not
	// their claims); ErrNotFound if absent.
	DeleteManifest(ctx context.Context, repo string, d digest.Digest, o DeleteOptions) error
	// Referrers lists manifests of repo whose subject is subject, filtered by
	// artifactType when it is not empty, ordered by digest.
	Referrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]oci.Descriptor, error)
}

// Tags maps tag names to manifest digests.
type Tags interface {
	// ResolveTag returns the digest tag points at, or ErrNotFound.
	ResolveTag(ctx context.Context, repo, tag string) (digest.Digest, error)
	// ListTags returns up to n tags of repo in byte order, all > last.
	ListTags(ctx context.Context, repo, last string, n int) ([]string, error)
	// DeleteTag removes the tag (not the manifest); ErrNotFound if absent.
	// A claim on the tag stays.
	DeleteTag(ctx context.Context, repo, tag string, o DeleteOptions) error
	// ClaimedDigest returns the digest tag is claimed for (TagClaim), or
	// ErrNotFound.
	ClaimedDigest(ctx context.Context, repo, tag string) (digest.Digest, error)
}

// TagsJoiner is an optional Tags ability: a ListTags page as one string,
// its names joined by TagSeparator, for a caller that copies the names
// straight into its answer (the slice of a 1,000-tag page's names was a
// third of its listing's allocated bytes).
type TagsJoiner interface {
	// ListTagsJoined is ListTags's page joined by TagSeparator, with the
	// number of names; ok is false, and the caller asks ListTags, when
	// the page cannot be said so (a name holds the separator).
	ListTagsJoined(ctx context.Context, repo, last string, n int) (joined string, count int, ok bool, err error)
}

// TagSeparator joins the names of a TagsJoiner page. Tag grammars forbid
// it, but a TagsJoiner still checks, as storage does not rely on them.
const TagSeparator = "\n"

// Uploads persists upload sessions.
type Uploads interface {
	CreateUpload(ctx context.Context, u *Upload) error
	// GetUpload returns the session, or ErrNotFound.
	GetUpload(ctx context.Context, id string) (*Upload, error)
	// UpdateUpload stores u only if the stored offset is still prevOffset;
	// otherwise ErrConflict (another request moved it first).
	UpdateUpload(ctx context.Context, u *Upload, prevOffset int64) error
	// DeleteUpload removes the session; ErrNotFound if absent.
	DeleteUpload(ctx context.Context, id string) error
	// FinishUpload links blob d (size bytes) into repo and removes the
	// session id, in one transaction: a crash leaves both or neither. A
	// session already gone is not an error (another request finished it),
	// but then evs are not recorded: that request recorded them.
	FinishUpload(ctx context.Context, id, repo string, d digest.Digest, size int64, evs ...Event) error
	// StaleUploads returns up to n sessions last updated before before.
	StaleUploads(ctx context.Context, before time.Time, n int) ([]*Upload, error)
	// CountUploads is how many sessions are open (the metrics' gauge).
	CountUploads(ctx context.Context) (int64, error)
}

// Leases coordinate background work between replicas: one holder at a time
// per lease name, until the lease expires or is released.
type Leases interface {
	// AcquireLease takes or renews the lease name for holder until now+ttl.
	// It returns false, nil when another holder has an unexpired lease.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up if holder has it; otherwise it does nothing.
	ReleaseLease(ctx context.Context, name, holder string) error
}
