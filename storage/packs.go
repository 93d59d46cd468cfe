package storage

import (
	"context"
	"time"

	"github.com/packreg/packreg/digest"
)

// Pack lifecycle states, as stored. Which transitions are allowed is the
// pack package's business; the store only compares and swaps.
const (
	PackActive     = "active"
	PackDeprecated = "deprecated"
	PackArchived   = "archived"
	// PackDeleted: the version's tag or manifest was deleted. The record
	// stays, so the version is never reused for other content, and a
	// re-push of its content brings back the state it had before.
	PackDeleted = "deleted"
)

// PackVersion is the index record of one pack version: a tag (Version) of a
// repository (Name) pointing at a pack manifest (Digest). It is derived
// from the manifest and its config, plus the lifecycle state.
type PackVersion struct {
	// ID is assigned by the store; it breaks ties between versions recorded
	// in the same nanosecond, so listings page deterministically.
	ID      int64
	Name    string
	Version string
	Digest  digest.Digest
	// MediaType, ArtifactType and Size describe the manifest itself (its
	// descriptor); TotalSize adds the config and every layer.
	MediaType    string
	ArtifactType string
	Size         int64
	TotalSize    int64
	Status       string // PackActive, PackDeprecated, PackArchived or PackDeleted
	StatusReason string
	Description  string
	Labels       map[string]string
	Files        []PackFile
	// Created is when the version was first recorded; Updated when its
	// record last changed (content or status).
	Created time.Time
	Updated time.Time
}

// PackFile is one layer of a pack: a file, named by its
// org.opencontainers.image.title annotation.
type PackFile struct {
	Name      string        `json:"name"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	MediaType string        `json:"mediaType"`
}

// PackStatusChange moves one version from one state to another. As a
// request, From is the state the caller saw: the change applies only if the
// version is still in it (compare-and-swap). As history, it is what
// happened.
type PackStatusChange struct {
	Name    string
	Version string
	From    string // "" in history: the version was first recorded
	To      string
	Reason  string
	Actor   string
	At      time.Time
}

// PackQuery selects pack versions, newest first (Created, then ID,
// descending). Empty fields do not filter.
type PackQuery struct {
	Status     string // one state, or "" for all
	Name       string // exact pack name
	NamePrefix string
	Digest     digest.Digest
	LabelKey   string // with LabelValue: versions carrying that label
	LabelValue string
	// Before is a keyset cursor: only versions older than (Created, ID) of
	// the last version of the previous page. Zero: start at the newest.
	BeforeCreated time.Time
	BeforeID      int64
	// Limit caps the page; <= 0 means no limit.
	Limit int
}

// Packs is the pack index: versions, their lifecycle and its history. The
// audit records passed to the writing methods are appended in the same
// transaction as the change, so the trail never misses a change that
// happened, nor records one that did not.
type Packs interface {
	// PutPackVersion records v (Status and Created are ignored: a new
	// version starts active, with a history entry saying so). When the
	// version is already recorded with v.Digest it changes nothing and
	// returns false. When it points at another digest, its content is
	// replaced (status kept) and rec.Details["previous"] names the old
	// digest. A version recorded as PackDeleted comes back in the state
	// it had before it was deleted (history entry PackDeleted → that
	// state, rec.Details["restored"] names it). rec, when not nil, is
	// appended only if something changed.
	PutPackVersion(ctx context.Context, v *PackVersion, rec *AuditRecord) (changed bool, err error)
	// GetPackVersion returns one version, or ErrNotFound.
	GetPackVersion(ctx context.Context, name, version string) (*PackVersion, error)
	// ListPackVersions returns the versions matching q, newest first.
	ListPackVersions(ctx context.Context, q PackQuery) ([]PackVersion, error)
	// ChangePackStatus applies every change, with history and recs, in one
	// transaction. If any version is missing (ErrNotFound) or no longer in
	// its From state (ErrConflict), nothing changes.
	ChangePackStatus(ctx context.Context, changes []PackStatusChange, recs []*AuditRecord) error
	// PackLifecycle returns the status history of one version, or of every
	// version of the pack when version is "", oldest first.
	PackLifecycle(ctx context.Context, name, version string) ([]PackStatusChange, error)
	// A version is never forgotten: a deleted one moves to PackDeleted
	// (ChangePackStatus), so its number stays bound to its content.
}

// IndexChanges are changes of the pack index that a registry write makes
// in its own transaction (PutManifestOptions.Index, DeleteOptions.Index),
// so the index cannot miss a push or a delete however the process dies,
// and costs no transaction of its own. Each change that changes something
// records its Event in the outbox after the write's own events, so the
// audit trail reads the push, then the publication it brought.
type IndexChanges struct {
	Puts    []PackPut
	Deletes []PackDelete
}

// PackPut records Version as PutPackVersion does. Event (pack.publish)
// is recorded when the put changes something, with Details["previous"]
// or Details["restored"] added as PutPackVersion adds them to its record.
type PackPut struct {
	Version *PackVersion
	Event   Event
}

// PackDelete moves to PackDeleted, with a history entry saying Reason,
// the version Name:Version, or (Version "") every version of Name
// pointing at Digest; versions already deleted, or not recorded, are left
// alone. Event is the template of the event recorded for each version it
// moves: Target and Digest are the version's, and Details gain "from" (the
// state it left) and "reason".
type PackDelete struct {
	Name    string
	Version string
	Digest  digest.Digest
	Reason  string
	Event   Event
}
