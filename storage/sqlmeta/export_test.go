package sqlmeta

import (
	"context"
	"database/sql"
)

// Write exposes the write path (group commit included) to the tests.
func (s *Store) Write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.write(ctx, "test", fn)
}

// Rebind exposes placeholder rewriting.
func (d *Dialect) Rebind(q string) string { return d.rebind(q) }

// MigrateTo brings db to schema version, as an older release would have.
func MigrateTo(ctx context.Context, db *sql.DB, d Dialect, version int) error {
	s := &Store{w: db, r: db, d: d}
	return s.migrateTo(ctx, version)
}

// Writers is how many writes are in the group commit's submit.
func (s *Store) Writers() int64 { return s.writers.Load() }

// DecodeFiles and DecodeLabels expose the reading of pack_versions' JSON
// columns (packjson.go).
var (
	DecodeFiles  = decodeFiles
	DecodeLabels = decodeLabels
)
