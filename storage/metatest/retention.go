package metatest

import (
	"fmt"
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
)

// retentionCases hold the record of retention runs (storage.RetentionRuns).
var retentionCases = []testCase{
	{"RetentionRunsRecorded", func(t *testing.T, s storage.Store) {
		start := time.Now().UTC().Truncate(time.Millisecond)
		for i := range 3 {
			run := &storage.RetentionRun{DryRun: i == 1, Trigger: fmt.Sprint("t", i), Started: start,
				Finished: start.Add(time.Second),
				Counts:   storage.RetentionCounts{Versions: 10 + i, Kept: 4, Deprecated: i, Archived: 2 * i, Deleted: 3, Failed: i % 2}}
			if i == 2 {
				run.Error = "1 change failed"
			}
			ok(t, s.RecordRetentionRun(ctx(t), run), "RecordRetentionRun")
			if run.ID == 0 {
				t.Fatal("RecordRetentionRun set no ID")
			}
		}
		// The collector's runs are another table.
		ok(t, s.RecordGCRun(ctx(t), &storage.GCRun{Trigger: "gc", Started: start, Finished: start}), "RecordGCRun")
		runs, err := s.RetentionRuns(ctx(t), 0, 2)
		ok(t, err, "RetentionRuns")
		if len(runs) != 2 || runs[0].Trigger != "t2" || runs[1].Trigger != "t1" {
			t.Fatalf("RetentionRuns newest first = %+v", runs)
		}
		r := runs[0]
		want := storage.RetentionCounts{Versions: 12, Kept: 4, Deprecated: 2, Archived: 4, Deleted: 3}
		if r.Error != "1 change failed" || r.Counts != want || r.DryRun || !runs[1].DryRun ||
			!r.Started.Equal(start) || !r.Finished.Equal(start.Add(time.Second)) {
			t.Fatalf("RetentionRuns lost fields: %+v", r)
		}
		older, err := s.RetentionRuns(ctx(t), runs[1].ID, 10)
		ok(t, err, "RetentionRuns before")
		if len(older) != 1 || older[0].Trigger != "t0" || older[0].Counts.Failed != 0 {
			t.Fatalf("RetentionRuns before %d = %+v", runs[1].ID, older)
		}
		none, err := s.RetentionRuns(ctx(t), 0, 0)
		ok(t, err, "RetentionRuns n=0")
		if len(none) != 0 {
			t.Fatalf("RetentionRuns n=0 = %+v", none)
		}
	}},
}
