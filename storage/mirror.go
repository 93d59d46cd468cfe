package storage

import (
	"context"
	"time"

	"github.com/packreg/packreg/digest"
)

// Kinds of remote registry the mirror package replicates with.
const (
	// MirrorPush is a downstream registry packreg pushes packs to.
	MirrorPush = "mirror"
	// MirrorPull is an upstream registry packreg pulls packs from.
	MirrorPull = "upstream"
)

// Run states. A run is created running and ends succeeded or failed; a run
// still running whose worker died is taken over by the next holder of the
// mirror's lease and carried on.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

// Mirror is one configured remote registry, a mirror or an upstream. What
// to copy and when (Spec) and how to authenticate (Secret) are documents of
// the mirror package: the store keeps them as given.
type Mirror struct {
	ID   string // chosen by the caller, unique
	Kind string // MirrorPush or MirrorPull
	Name string // unique within Kind
	URL  string
	// Spec is the JSON settings document (filters, schedule, concurrency).
	Spec string
	// Secret is the JSON credentials document. Only the worker reads it
	// back; APIs must never show it.
	Secret  string
	Created time.Time
	Updated time.Time
}

// MirrorRun is one sync or parity run of a mirror. Counts and Errors are
// JSON documents of the mirror package, rewritten while the run progresses.
type MirrorRun struct {
	ID       int64 // assigned by the store, increasing
	MirrorID string
	Kind     string // "sync" or "parity"
	Trigger  string // "api", "schedule", "publish"...
	// Scope is a JSON document narrowing the run (some packs only); empty
	// means everything the mirror's Spec selects.
	Scope  string
	State  string // RunRunning, RunSucceeded or RunFailed
	Holder string // the worker carrying it on; "" until one takes it
	Counts string
	Errors string
	// Attempts counts the workers that took the run on: more than one means
	// it was resumed after a restart.
	Attempts int
	Started  time.Time
	Updated  time.Time
	Finished time.Time // zero while running
}

// ParityCheck is one comparison of a mirror with its primary. Counts is a
// JSON document (entries per status).
type ParityCheck struct {
	ID       int64 // assigned by the store, increasing
	MirrorID string
	InParity bool
	Counts   string
	Started  time.Time
	Finished time.Time
}

// ParityEntry is the verdict about one pack version in one check.
type ParityEntry struct {
	CheckID       int64
	Name          string
	Version       string
	Status        string // in_sync, out_of_sync, missing, extra, referrers_incomplete
	PrimaryDigest digest.Digest
	MirrorDigest  digest.Digest
	// Detail says why, for people (the referrers the mirror lacks...).
	Detail string
}

// Remotes are the mirror package's remote registries: mirrors (this
// registry pushes to them) and upstreams (it pulls from them).
type Remotes interface {
	// CreateMirror stores m; ErrConflict when its ID, or its Name within
	// its Kind, is taken. The writing methods record evs (Blobs explains
	// them) with the change.
	CreateMirror(ctx context.Context, m *Mirror, evs ...Event) error
	// GetMirror returns the mirror, or ErrNotFound.
	GetMirror(ctx context.Context, id string) (*Mirror, error)
	// ListMirrors returns the mirrors of kind (every kind when ""), by name.
	ListMirrors(ctx context.Context, kind string) ([]*Mirror, error)
	// UpdateMirror stores m's Name, URL, Spec, Secret and Updated;
	// ErrNotFound if absent, ErrConflict if the name is taken.
	UpdateMirror(ctx context.Context, m *Mirror, evs ...Event) error
	// DeleteMirror removes the mirror with its runs and parity history;
	// ErrNotFound if absent.
	DeleteMirror(ctx context.Context, id string, evs ...Event) error
}

// Runs are the sync and parity runs of remotes, which workers on any
// replica carry on.
type Runs interface {
	// CreateMirrorRun stores r and sets r.ID.
	CreateMirrorRun(ctx context.Context, r *MirrorRun) error
	// GetMirrorRun returns the run, or ErrNotFound.
	GetMirrorRun(ctx context.Context, id int64) (*MirrorRun, error)
	// UpdateMirrorRun stores r's State, Holder, Counts, Errors, Attempts,
	// Updated and Finished; ErrNotFound if absent.
	UpdateMirrorRun(ctx context.Context, r *MirrorRun) error
	// ListMirrorRuns returns up to n runs of the mirror (of kind, every kind
	// when ""), newest first, with IDs below before (0: from the newest).
	ListMirrorRuns(ctx context.Context, mirrorID, kind string, before int64, n int) ([]*MirrorRun, error)
	// RunningMirrorRuns returns the mirror's runs still running, oldest first.
	RunningMirrorRuns(ctx context.Context, mirrorID string) ([]*MirrorRun, error)
}

// Parity is the history of parity checks, with their entries.
type Parity interface {
	// PutParityCheck stores c and its entries in one transaction and sets
	// c.ID (and each entry's CheckID).
	PutParityCheck(ctx context.Context, c *ParityCheck, entries []ParityEntry) error
	// GetParityCheck returns the check, or ErrNotFound.
	GetParityCheck(ctx context.Context, id int64) (*ParityCheck, error)
	// ListParityChecks returns up to n checks of the mirror, newest first,
	// with IDs below before (0: from the newest).
	ListParityChecks(ctx context.Context, mirrorID string, before int64, n int) ([]*ParityCheck, error)
	// ParityEntries returns the entries of a check with status (every
	// status when ""), by name and version.
	ParityEntries(ctx context.Context, checkID int64, status string) ([]ParityEntry, error)
}
