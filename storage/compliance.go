package storage

import (
	"context"
	"time"

	"github.com/packreg/packreg/digest"
)

// ComplianceRecord is the compliance package's finding about one pack
// version: what it read from the other packages' records when it last
// evaluated the version, and the verdict of each rule. Pages and API
// calls read these; they never evaluate anything themselves.
type ComplianceRecord struct {
	Name    string
	Version string
	Digest  digest.Digest
	// Lifecycle is the version's state (PackActive...); versions in
	// PackDeleted are kept but left out of every listing and count.
	Lifecycle    string
	Verification string // attest's word: verified, unsigned, untrusted, invalid
	// Attestations are the predicate types with a verified attestation,
	// sorted, without duplicates.
	Attestations []string
	Compliant    bool
	Findings     []ComplianceFinding
	Evaluated    time.Time
}

// ComplianceFinding is the verdict of one rule on one version.
type ComplianceFinding struct {
	Rule   string `json:"rule"`
	Status string `json:"status"` // "pass" or "fail"
	Reason string `json:"reason,omitempty"`
}

// ComplianceQuery selects compliance records in (Name, Version) byte
// order, deleted versions left out. Empty fields do not filter.
type ComplianceQuery struct {
	// Compliant filters by verdict when not nil.
	Compliant  *bool
	NamePrefix string
	// AfterName and AfterVersion are the keyset cursor: the last record
	// of the previous page.
	AfterName, AfterVersion string
	Limit                   int // <= 0: no limit
}

// ComplianceTally is how many versions (deleted left out) of one pack
// share one combination of facts: what a summary adds up, per name so a
// summary can be narrowed to some repositories.
type ComplianceTally struct {
	Name         string
	Verification string
	Lifecycle    string
	Compliant    bool
	Attested     bool
	Versions     int64
	// Evaluated is the latest evaluation among them.
	Evaluated time.Time
}

// ComplianceCoverage is how many versions of one pack have a verified
// attestation of one predicate type.
type ComplianceCoverage struct {
	Name          string
	PredicateType string
	Versions      int64
}

// ComplianceSnapshot is the summary's counts at one moment (a JSON
// document of the compliance package), kept for the trend.
type ComplianceSnapshot struct {
	At     time.Time
	Counts string
}

// Compliance is the compliance package's store: its findings per
// version, the rules set through the API, and snapshots of its counts.
type Compliance interface {
	// PutComplianceRecords inserts or replaces recs (keyed by Name and
	// Version), with their attestation types, in one transaction.
	PutComplianceRecords(ctx context.Context, recs []ComplianceRecord) error
	// ListComplianceRecords returns the records q selects.
	ListComplianceRecords(ctx context.Context, q ComplianceQuery) ([]ComplianceRecord, error)
	// ComplianceTallies counts the records by name and facts.
	ComplianceTallies(ctx context.Context) ([]ComplianceTally, error)
	// ComplianceCoverage counts the records by name and attested type.
	ComplianceCoverage(ctx context.Context) ([]ComplianceCoverage, error)
	// ComplianceRules returns the rules document last put, or ErrNotFound
	// when none was.
	ComplianceRules(ctx context.Context) (doc string, updated time.Time, err error)
	// PutComplianceRules replaces the rules document and records evs.
	PutComplianceRules(ctx context.Context, doc string, at time.Time, evs ...Event) error
	// PutComplianceSnapshot keeps one snapshot (one per At: a second
	// with the same At replaces it).
	PutComplianceSnapshot(ctx context.Context, s ComplianceSnapshot) error
	// ComplianceSnapshots returns up to n snapshots with from <= At <= to,
	// oldest first.
	ComplianceSnapshots(ctx context.Context, from, to time.Time, n int) ([]ComplianceSnapshot, error)
}
