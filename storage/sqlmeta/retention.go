package sqlmeta

import (
	"context"
	"encoding/json"

	"github.com/packreg/packreg/storage"
)

// The record of retention runs (storage.RetentionRuns), kept as the
// collector keeps its runs (gc.go).

func (s *Store) RecordRetentionRun(ctx context.Context, run *storage.RetentionRun) error {
	return s.recordRun(ctx, "record retention run", qRetentionRecordRun, runRow{dry: run.DryRun, trigger: run.Trigger,
		started: run.Started, finished: run.Finished, err: run.Error}, run.Counts, &run.ID)
}

func (s *Store) RetentionRuns(ctx context.Context, before int64, n int) ([]storage.RetentionRun, error) {
	var out []storage.RetentionRun
	err := s.listRuns(ctx, "retention runs", qRetentionRuns, before, n, func(r runRow, counts []byte) error {
		out = append(out, storage.RetentionRun{ID: r.id, DryRun: r.dry, Trigger: r.trigger, Started: r.started,
			Finished: r.finished, Error: r.err})
		return json.Unmarshal(counts, &out[len(out)-1].Counts)
	})
	return out, err
}

var (
	qRetentionRecordRun = query(`INSERT INTO retention_runs (dry_run, trigger_name, started, finished, error, counts)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`)
	qRetentionRuns = query(`SELECT id, dry_run, trigger_name, started, finished, error, counts FROM retention_runs
		WHERE id < ? ORDER BY id DESC LIMIT ?`)
)
