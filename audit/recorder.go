package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/packreg/packreg/storage"
)

// ActionConfigChange is the action of a configuration change record.
const ActionConfigChange = "config.change"

// Log is what audit needs of the metadata store: the trail, and the
// outbox of events the recorder turns into records (and whose backlog
// verify reports).
type Log interface {
	storage.AuditLog
	storage.Outbox
}

// Recorder keeps the audit trail: it turns the events the metadata store
// recorded with each change (blob and manifest pushes, tag moves, deletes,
// key and mirror changes) into records, and records configuration changes.
//
// A change and its record commit together, so the trail cannot miss a
// change: with a store that can (storage.InlineAuditor), Watch makes every
// write append its records in its own transaction; with one that cannot,
// the change and its event commit together and Watch records the events
// right after their commit (behind the client's answer where the store
// drains behind it, and then catches up before every read of the trail),
// and an event whose record could not be written then (a failure, a
// crash) stays in the outbox until the next drain: Flush (at start) or
// Run (periodically) records it.
type Recorder struct {
	log    Log
	logger *slog.Logger
}

// NewRecorder returns a recorder appending to log.
func NewRecorder(log Log, logger *slog.Logger) *Recorder {
	return &Recorder{log: log, logger: logger}
}

// Watch makes the recorder record events as they are committed: in the
// committing transaction when the store can (one commit per change, not
// two: the second was a tenth of a manifest PUT's CPU), else (or when the
// chain head stays locked) right after the commit: on the committing
// goroutine, or behind the answer where the store drains behind it
// (PostgreSQL). Call it once, before serving, after the Flush of what an
// earlier run left queued, so the trail stays in the order things
// happened.
func (r *Recorder) Watch() {
	if in, ok := r.log.(storage.InlineAuditor); ok {
		// Little is queued for the trail from now on: what a write queues
		// while another is under way or the chain head stays locked
		// (PostgreSQL) is drained below, right after its commit.
		in.AuditInline()
	}
	r.log.OnEvents(func(ctx context.Context) {
		if err := r.Flush(ctx); err != nil {
			r.logger.WarnContext(ctx, "audit records not written yet; they stay queued and are retried", "err", err)
		}
	})
}

// flushBatch is how many events one drain records at most.
const flushBatch = 256

// Flush records every event still waiting for the trail. A drain that
// recorded less than a full batch found everything there was: a request
// pays for one drain, not for a second that finds nothing.
func (r *Recorder) Flush(ctx context.Context) error {
	for {
		n, err := r.log.AuditEvents(ctx, flushBatch)
		if err != nil || n < flushBatch {
			return err
		}
	}
}

// Run flushes every interval until ctx ends: what a failed flush left
// behind, and the events of a replica that died before recording them.
func (r *Recorder) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.Flush(ctx); err != nil && ctx.Err() == nil {
			r.logger.WarnContext(ctx, "audit records not written yet; retrying", "err", err)
		}
	}
}

// RecordConfig appends a config.change record for target when settings
// differ from those of the last record for target (or there is none), so
// each start of the server with a changed configuration leaves one record,
// also when several replicas start at once: the store compares and
// appends in one step under the chain head's lock. It reports whether it
// appended.
func (r *Recorder) RecordConfig(ctx context.Context, actor, target string, settings map[string]string) (bool, error) {
	return r.log.AppendAuditIfChanged(ctx, &storage.AuditRecord{Actor: actor, Action: ActionConfigChange, Target: target, Details: settings})
}
