package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// The pack index: pack_versions (one row per version, files and labels as
// JSON for reading), pack_labels (the labels again, one row each, for the
// label filter) and pack_lifecycle (status history, kept when a version is
// deleted). Writes append their audit records last in the same transaction.

func (s *Store) PutPackVersion(ctx context.Context, v *storage.PackVersion, rec *storage.AuditRecord) (bool, error) {
	actor := ""
	if rec != nil {
		actor = rec.Actor
	}
	var changed bool
	err := s.writeAfterQueue(ctx, "put pack version", func(ctx context.Context, tx *sql.Tx) error {
		var (
			details map[string]string
			err     error
		)
		changed, details, err = s.putPackVersion(ctx, tx, v, actor, time.Now().UnixNano())
		if err != nil || !changed || rec == nil {
			return err
		}
		if len(details) > 0 {
			rec.Details = maps.Clone(rec.Details)
			if rec.Details == nil {
				rec.Details = map[string]string{}
			}
			maps.Copy(rec.Details, details)
		}
		return s.appendAfterQueue(ctx, tx, []*storage.AuditRecord{rec})
	})
	return changed, err
}

func (s *Store) GetPackVersion(ctx context.Context, name, version string) (*storage.PackVersion, error) {
	rows, err := s.rows(ctx, s.r, qGetPackVersion, name, version)
	if err != nil {
		return nil, s.fail("get pack version", err)
	}
	vs, err := scanPackVersions(rows, 1)
	if err != nil {
		return nil, s.fail("get pack version", err)
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("pack version %s:%s: %w", name, version, storage.ErrNotFound)
	}
	return &vs[0], nil
}

func (s *Store) ListPackVersions(ctx context.Context, q storage.PackQuery) ([]storage.PackVersion, error) {
	bc, bi := nanos(q.BeforeCreated), q.BeforeID
	if q.BeforeCreated.IsZero() && bi == 0 {
		bc, bi = math.MaxInt64, math.MaxInt64
	}
	args := []any{bc, bc, bi}
	var mask int
	add := func(bit int, on bool, vals ...any) {
		if on {
			mask |= bit
			args = append(args, vals...)
		}
	}
	add(packStatus, q.Status != "", q.Status)
	add(packName, q.Name != "", q.Name)
	add(packPrefix, q.NamePrefix != "", q.NamePrefix, prefixEnd(q.NamePrefix))
	add(packDigest, q.Digest != "", string(q.Digest))
	add(packLabel, q.LabelKey != "", q.LabelKey, q.LabelValue)
	args = append(args, limitArg(q.Limit))
	rows, err := s.rows(ctx, s.r, qListPackVersions[mask], args...)
	if err != nil {
		return nil, s.fail("list pack versions", err)
	}
	// A page is read into a slice of its size at once: grown by append,
	// a 101-row page allocated 2.5 times its rows.
	vs, err := scanPackVersions(rows, min(q.Limit, maxPackHint))
	return vs, s.fail("list pack versions", err)
}

func (s *Store) ChangePackStatus(ctx context.Context, changes []storage.PackStatusChange, recs []*storage.AuditRecord) error {
	// Sorted, so two multi-version changes lock rows in the same order
	// (PostgreSQL) and cannot deadlock.
	changes = slices.Clone(changes)
	slices.SortFunc(changes, func(a, b storage.PackStatusChange) int {
		return strings.Compare(a.Name+"\x00"+a.Version, b.Name+"\x00"+b.Version)
	})
	return s.writeAfterQueue(ctx, "change pack status", func(ctx context.Context, tx *sql.Tx) error {
		now := time.Now().UnixNano()
		for _, c := range changes {
			at := nanos(c.At)
			if at == 0 {
				at = now
			}
			n, err := s.exec(ctx, tx, qSetPackStatus, c.To, c.Reason, at, c.Name, c.Version, c.From)
			if err != nil {
				return err
			}
			if n == 0 {
				var one int
				err := s.row(ctx, tx, qPackVersionExists, c.Name, c.Version).Scan(&one)
				if errors.Is(err, sql.ErrNoRows) {
					return fmt.Errorf("pack version %s:%s: %w", c.Name, c.Version, storage.ErrNotFound)
				}
				if err != nil {
					return err
				}
				return fmt.Errorf("pack version %s:%s is no longer %s: %w", c.Name, c.Version, c.From, storage.ErrConflict)
			}
			if _, err := s.exec(ctx, tx, qInsertPackHistory, c.Name, c.Version, c.From, c.To, c.Reason, c.Actor, at); err != nil {
				return err
			}
		}
		if len(recs) == 0 {
			return nil
		}
		return s.appendAfterQueue(ctx, tx, recs)
	})
}

func (s *Store) PackLifecycle(ctx context.Context, name, version string) ([]storage.PackStatusChange, error) {
	q, args := qPackHistory, []any{name}
	if version != "" {
		q, args = qPackVersionHistory, append(args, version)
	}
	rows, err := s.rows(ctx, s.r, q, args...)
	if err != nil {
		return nil, s.fail("pack lifecycle", err)
	}
	defer rows.Close()
	var out []storage.PackStatusChange
	for rows.Next() {
		var (
			c  storage.PackStatusChange
			at int64
		)
		if err := rows.Scan(&c.Name, &c.Version, &c.From, &c.To, &c.Reason, &c.Actor, &at); err != nil {
			return nil, s.fail("pack lifecycle", err)
		}
		c.At = fromNanos(at)
		out = append(out, c)
	}
	return out, s.fail("pack lifecycle", rows.Err())
}

// maxPackHint bounds the rows scanPackVersions makes room for ahead.
const maxPackHint = 1001

// scanPackVersions reads rows, making room for hint of them first.
func scanPackVersions(rows *sql.Rows, hint int) ([]storage.PackVersion, error) {
	defer rows.Close()
	var out []storage.PackVersion // nil when there are no rows, as before
	// Scan's destinations escape to the heap: declared once, not per row
	// (six allocations and 300 bytes a row, a fifth of a page's garbage).
	var (
		v                storage.PackVersion
		dg, labels, fs   string
		created, updated int64
	)
	for rows.Next() {
		if out == nil {
			out = make([]storage.PackVersion, 0, max(hint, 1))
		}
		v = storage.PackVersion{}
		err := rows.Scan(&v.ID, &v.Name, &v.Version, &dg, &v.MediaType, &v.ArtifactType, &v.Size, &v.TotalSize,
			&v.Status, &v.StatusReason, &v.Description, &labels, &fs, &created, &updated)
		if err != nil {
			return nil, err
		}
		v.Digest = digest.Digest(dg)
		v.Created, v.Updated = fromNanos(created), fromNanos(updated)
		if v.Labels, err = decodeLabels(labels); err != nil {
			return nil, fmt.Errorf("pack version %s:%s: labels: %w", v.Name, v.Version, err)
		}
		if v.Files, err = decodeFiles(fs); err != nil {
			return nil, fmt.Errorf("pack version %s:%s: files: %w", v.Name, v.Version, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Filters of ListPackVersions, as bits of the index into qListPackVersions.
const (
	packStatus = 1 << iota
	packName
	packPrefix
	packDigest
	packLabel
)

const packColumns = `id, name, version, digest, media_type, artifact_type, size, total_size,
	status, status_reason, description, labels, files, created, updated`

var (
	qPackVersionDigest = query(`SELECT id, digest, status FROM pack_versions WHERE name = ? AND version = ?`)
	// The state a deleted version had: where its last deletion came from.
	qStateBeforeDelete = query(`SELECT from_status FROM pack_lifecycle
		WHERE name = ? AND version = ? AND to_status = ? ORDER BY id DESC LIMIT 1`)
	qLastReasonFor = query(`SELECT reason FROM pack_lifecycle
		WHERE name = ? AND version = ? AND to_status = ? ORDER BY id DESC LIMIT 1`)
	qPackVersionExists = query(`SELECT 1 FROM pack_versions WHERE name = ? AND version = ?`)
	qInsertPackVersion = query(`INSERT INTO pack_versions (name, version, status, status_reason, created,
			digest, media_type, artifact_type, size, total_size, description, labels, files, updated)
		VALUES (?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name, version) DO NOTHING RETURNING id`)
	qUpdatePackContent = query(`UPDATE pack_versions SET digest = ?, media_type = ?, artifact_type = ?,
		size = ?, total_size = ?, description = ?, labels = ?, files = ?, updated = ? WHERE id = ?`)
	qInsertPackLabel   = query(`INSERT INTO pack_labels (version_id, label_key, label_value) VALUES (?, ?, ?)`)
	qDeletePackLabels  = query(`DELETE FROM pack_labels WHERE version_id = ?`)
	qInsertPackHistory = query(`INSERT INTO pack_lifecycle (name, version, from_status, to_status, reason, actor, at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`)
	qGetPackVersion = query(`SELECT ` + packColumns + ` FROM pack_versions WHERE name = ? AND version = ?`)
	qSetPackStatus  = query(`UPDATE pack_versions SET status = ?, status_reason = ?, updated = ?
		WHERE name = ? AND version = ? AND status = ?`)
	qPackHistory = query(`SELECT name, version, from_status, to_status, reason, actor, at
		FROM pack_lifecycle WHERE name = ? ORDER BY id`)
	qPackVersionHistory = query(`SELECT name, version, from_status, to_status, reason, actor, at
		FROM pack_lifecycle WHERE name = ? AND version = ? ORDER BY id`)
	// Keyset pages, newest first: (created, id) below the cursor.
	qListPackVersions = queryVariants(`SELECT `+packColumns+` FROM pack_versions
		WHERE (created < ? OR (created = ? AND id < ?))`,
		[]string{
			` AND status = ?`,
			` AND name = ?`,
			` AND name >= ? AND name < ?`,
			` AND digest = ?`,
			` AND id IN (SELECT version_id FROM pack_labels WHERE label_key = ? AND label_value = ?)`,
		},
		` ORDER BY created DESC, id DESC LIMIT ?`)
)
