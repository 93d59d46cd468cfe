package storage

import (
	"context"
	"time"

	"github.com/packreg/packreg/digest"
)

// Import states. An import is created receiving while its bundle streams
// in; it is refused (a check failed, nothing was published) or moves to
// publishing, and ends succeeded or failed. AlreadyApplied: the bundle was
// applied before, and nothing was done.
const (
	ImportReceiving      = "receiving"
	ImportPublishing     = "publishing"
	ImportSucceeded      = "succeeded"
	ImportFailed         = "failed"
	ImportRefused        = "refused"
	ImportAlreadyApplied = "alreadyApplied"
)

// BundleImport is one import of an offline bundle. Report is a JSON
// document of the bundle package (progress, per-version outcomes, errors),
// rewritten while the import runs.
type BundleImport struct {
	ID           string // chosen by the caller, unique
	State        string // Import*
	Actor        string
	BundleDigest digest.Digest // "" until the bundle's manifest was read
	Chain        string
	Sequence     int64
	Report       string
	Created      time.Time
	Updated      time.Time
}

// AppliedBundle is a bundle of a chain that this registry applied: the
// chain's position it holds, and the import that applied it.
type AppliedBundle struct {
	Digest   digest.Digest
	Chain    string
	Sequence int64 // 1 for the first bundle of a chain
	Previous digest.Digest
	ImportID string
	Applied  time.Time
}

// Bundles is the bundle package's part of the store: imports and their
// reports, and the chains of bundles applied here.
type Bundles interface {
	// PutBundleImport creates or replaces the import with imp.ID.
	PutBundleImport(ctx context.Context, imp *BundleImport) error
	// GetBundleImport returns one import, or ErrNotFound.
	GetBundleImport(ctx context.Context, id string) (*BundleImport, error)
	// ListBundleImports returns up to n imports created before before
	// (the newest first; zero before: from the newest).
	ListBundleImports(ctx context.Context, before time.Time, n int) ([]*BundleImport, error)
	// AppliedBundle returns the applied bundle with digest d, or ErrNotFound.
	AppliedBundle(ctx context.Context, d digest.Digest) (*AppliedBundle, error)
	// ChainHead returns the applied bundle of chain with the highest
	// sequence, or ErrNotFound when none is.
	ChainHead(ctx context.Context, chain string) (*AppliedBundle, error)
	// ApplyBundle records b as applied, stores imp and appends recs to the
	// audit trail, in one transaction. b must continue its chain: sequence
	// 1 of a chain with nothing applied, or the sequence after the chain's
	// head whose digest is b.Previous. Otherwise (a concurrent import
	// moved the chain, the position is taken) nothing changes and the
	// error matches ErrConflict.
	ApplyBundle(ctx context.Context, b *AppliedBundle, imp *BundleImport, recs ...*AuditRecord) error
}
