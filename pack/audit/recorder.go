package audit

import (
	"context"
	"log/slog"
	"maps"
	"strconv"

	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// ActionConfigChange is the action of a configuration change record.
const ActionConfigChange = "config.change"

// Recorder appends audit records.
type Recorder struct {
	log    storage.AuditLog
	logger *slog.Logger
}

// NewRecorder returns a recorder appending to log.
func NewRecorder(log storage.AuditLog, logger *slog.Logger) *Recorder {
	return &Recorder{log: log, logger: logger}
}

// Observe is a registry event subscriber: one record per event, after the
// change is durable. An append that fails is logged at ERROR: the change
// has happened and the client has its answer, so the gap is for an
// operator to see (audit verify cannot, since nothing was written).
func (r *Recorder) Observe(ctx context.Context, e registry.Event) {
	target := e.Repo
	if e.Tag != "" {
		target += ":" + e.Tag
	}
	details := map[string]string{}
	for k, v := range map[string]string{"mediaType": e.MediaType, "artifactType": e.ArtifactType, "subject": string(e.Subject)} {
		if v != "" {
			details[k] = v
		}
	}
	if e.Size > 0 {
		details["size"] = strconv.FormatInt(e.Size, 10)
	}
	rec := &storage.AuditRecord{At: e.At, Actor: e.Actor, Action: e.Action, Target: target, Digest: e.Digest, Details: details}
	if err := r.log.AppendAudit(ctx, rec); err != nil {
		r.logger.ErrorContext(ctx, "audit record lost", "action", e.Action, "target", target, "digest", e.Digest, "err", err)
	}
}

// RecordConfig appends a config.change record for target when settings
// differ from those of the last record for target (or there is none), so
// each start of the server with a changed configuration leaves one record.
// It reports whether it appended.
func (r *Recorder) RecordConfig(ctx context.Context, actor, target string, settings map[string]string) (bool, error) {
	q := storage.AuditQuery{Action: ActionConfigChange, TargetPrefix: target, Limit: 100}
	for {
		recs, err := r.log.ListAudit(ctx, q)
		if err != nil {
			return false, err
		}
		for _, rec := range recs {
			if rec.Target == target { // the prefix may match longer targets
				if maps.Equal(rec.Details, settings) {
					return false, nil
				}
				return true, r.appendConfig(ctx, actor, target, settings)
			}
		}
		if len(recs) < q.Limit {
			return true, r.appendConfig(ctx, actor, target, settings)
		}
		q.Before = recs[len(recs)-1].ID
	}
}

func (r *Recorder) appendConfig(ctx context.Context, actor, target string, settings map[string]string) error {
	return r.log.AppendAudit(ctx, &storage.AuditRecord{Actor: actor, Action: ActionConfigChange, Target: target, Details: settings})
}
