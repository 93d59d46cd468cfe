package storage

import (
	"context"
	"time"
)

// RetentionRun is the record of one retention run (package retention):
// what its rules changed, or (dry) would change.
type RetentionRun struct {
	ID       int64
	DryRun   bool
	Trigger  string // "api", "schedule"
	Started  time.Time
	Finished time.Time
	// Error is why the run stopped early or what failed ("" when every
	// planned change was made; see RunError).
	Error  string
	Counts RetentionCounts
}

// RetentionCounts count a run's plan by action.
type RetentionCounts struct {
	Versions   int `json:"versions"` // versions a rule covered
	Kept       int `json:"kept"`
	Deprecated int `json:"deprecated"`
	Archived   int `json:"archived"`
	Deleted    int `json:"deleted"`
	Failed     int `json:"failed"` // planned changes that could not be made (real runs)
}

// RetentionRuns records retention runs.
type RetentionRuns interface {
	// RecordRetentionRun stores a finished run and sets its ID.
	RecordRetentionRun(ctx context.Context, run *RetentionRun) error
	// RetentionRuns returns up to n runs, newest first, with ID < before
	// (0: from the newest).
	RetentionRuns(ctx context.Context, before int64, n int) ([]RetentionRun, error)
}
