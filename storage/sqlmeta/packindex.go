package sqlmeta

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// The pack index's writes inside a transaction: PutPackVersion's, and
// those a registry write carries (storage.IndexChanges), so a push or a
// delete and what it does to the index commit together.

// applyIndex makes the changes of ix in tx and returns the events of those
// that changed something, to record after the write's own.
func (s *Store) applyIndex(ctx context.Context, tx *sql.Tx, ix storage.IndexChanges) ([]storage.Event, error) {
	if len(ix.Puts) == 0 && len(ix.Deletes) == 0 {
		return nil, nil
	}
	now := time.Now().UnixNano()
	var evs []storage.Event
	for _, p := range ix.Puts {
		changed, details, err := s.putPackVersion(ctx, tx, p.Version, p.Event.Actor, now)
		if err != nil {
			return nil, err
		}
		if changed {
			e := p.Event
			e.Details = maps.Clone(e.Details)
			if e.Details == nil {
				e.Details = map[string]string{}
			}
			maps.Copy(e.Details, details)
			evs = append(evs, e)
		}
	}
	for _, d := range ix.Deletes {
		moved, err := s.deletePackVersions(ctx, tx, d, now)
		if err != nil {
			return nil, err
		}
		evs = append(evs, moved...)
	}
	return evs, nil
}

// putPackVersion records v in tx (storage.Packs.PutPackVersion says how)
// and reports whether it changed anything, with the details of the
// change: "previous" (the digest it replaced), "restored" (the state a
// deleted version came back to).
func (s *Store) putPackVersion(ctx context.Context, tx *sql.Tx, v *storage.PackVersion, actor string, now int64) (bool, map[string]string, error) {
	labels, err := json.Marshal(nonNilMap(v.Labels))
	if err != nil {
		return false, nil, fmt.Errorf("sqlmeta: encode labels: %w", err)
	}
	files, err := json.Marshal(nonNilSlice(v.Files))
	if err != nil {
		return false, nil, fmt.Errorf("sqlmeta: encode files: %w", err)
	}
	content := []any{string(v.Digest), v.MediaType, v.ArtifactType, v.Size, v.TotalSize,
		v.Description, string(labels), string(files), now}
	var (
		id           int64
		prev, status string
	)
	details := map[string]string{}
	for attempt := 0; ; attempt++ {
		err := s.row(ctx, tx, qPackVersionDigest, v.Name, v.Version).Scan(&id, &prev, &status)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, nil, err
		}
		if err == nil {
			break
		}
		args := append([]any{v.Name, v.Version, storage.PackActive, now}, content...)
		err = s.row(ctx, tx, qInsertPackVersion, args...).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) && attempt == 0 {
			// ON CONFLICT DO NOTHING: a concurrent transaction recorded
			// the version first. PostgreSQL waited for it to commit, and
			// the next statement sees its row: read it.
			continue
		}
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil, fmt.Errorf("pack version %s:%s recorded concurrently: %w", v.Name, v.Version, storage.ErrConflict)
		}
		if err != nil {
			return false, nil, err
		}
		if _, err := s.exec(ctx, tx, qInsertPackHistory, v.Name, v.Version, "", storage.PackActive, "published", actor, now); err != nil {
			return false, nil, err
		}
		return true, details, s.insertPackLabels(ctx, tx, id, v.Labels)
	}
	if prev == string(v.Digest) && status != storage.PackDeleted {
		return false, nil, nil
	}
	if status == storage.PackDeleted {
		to, err := s.restorePackVersion(ctx, tx, v, now, actor)
		if err != nil {
			return false, nil, err
		}
		details["restored"] = to
	}
	if prev != string(v.Digest) {
		if _, err := s.exec(ctx, tx, qUpdatePackContent, append(content, id)...); err != nil {
			return false, nil, err
		}
		details["previous"] = prev
	}
	if _, err := s.exec(ctx, tx, qDeletePackLabels, id); err != nil {
		return false, nil, err
	}
	return true, details, s.insertPackLabels(ctx, tx, id, v.Labels)
}

func (s *Store) insertPackLabels(ctx context.Context, tx *sql.Tx, id int64, labels map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if _, err := s.exec(ctx, tx, qInsertPackLabel, id, k, labels[k]); err != nil {
			return err
		}
	}
	return nil
}

// restorePackVersion brings a deleted version back to the state it had
// before its deletion (history says), with that state's reason, and
// records the change. It returns the state.
func (s *Store) restorePackVersion(ctx context.Context, tx *sql.Tx, v *storage.PackVersion, now int64, actor string) (string, error) {
	to := storage.PackActive
	err := s.row(ctx, tx, qStateBeforeDelete, v.Name, v.Version, storage.PackDeleted).Scan(&to)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	reason := ""
	if to != storage.PackActive {
		err := s.row(ctx, tx, qLastReasonFor, v.Name, v.Version, to).Scan(&reason)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return "", err
		}
	}
	if _, err := s.exec(ctx, tx, qSetPackStatus, to, reason, now, v.Name, v.Version, storage.PackDeleted); err != nil {
		return "", err
	}
	_, err = s.exec(ctx, tx, qInsertPackHistory, v.Name, v.Version, storage.PackDeleted, to, "pushed again", actor, now)
	return to, err
}

// deletePackVersions moves the versions d names to deleted, each with a
// history entry, and returns an event for each it moved.
func (s *Store) deletePackVersions(ctx context.Context, tx *sql.Tx, d storage.PackDelete, now int64) ([]storage.Event, error) {
	type found struct{ version, digest, status string }
	var vs []found
	if d.Version != "" {
		var (
			id int64
			f  = found{version: d.Version}
		)
		err := s.row(ctx, tx, qPackVersionDigest, d.Name, d.Version).Scan(&id, &f.digest, &f.status)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		vs = append(vs, f)
	} else {
		rows, err := s.rows(ctx, tx, qPackVersionsOfDigest, d.Name, string(d.Digest))
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var f found
			if err := rows.Scan(&f.version, &f.digest, &f.status); err != nil {
				rows.Close()
				return nil, err
			}
			vs = append(vs, f)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	var evs []storage.Event
	for _, v := range vs {
		if v.status == storage.PackDeleted {
			continue
		}
		if _, err := s.exec(ctx, tx, qSetPackStatus, storage.PackDeleted, d.Reason, now, d.Name, v.version, v.status); err != nil {
			return nil, err
		}
		if _, err := s.exec(ctx, tx, qInsertPackHistory, d.Name, v.version, v.status, storage.PackDeleted, d.Reason, d.Event.Actor, now); err != nil {
			return nil, err
		}
		e := d.Event
		e.Target, e.Digest = d.Name+":"+v.version, digest.Digest(v.digest)
		e.Details = maps.Clone(e.Details)
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details["from"], e.Details["reason"] = v.status, d.Reason
		evs = append(evs, e)
	}
	return evs, nil
}

var qPackVersionsOfDigest = query(`SELECT version, digest, status FROM pack_versions
	WHERE name = ? AND digest = ? ORDER BY version`)
