package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// migrations is the schema history. Append only: a released step never
// changes, because databases in the field already ran it. Each step runs in
// one transaction and is recorded in schema_migrations as its index + 1.
// Types are {{tokens}} filled by the Dialect, so both databases share it.
var migrations = [][]string{
	1: {
		`CREATE TABLE repositories (
			id   {{id}},
			name {{name}} NOT NULL UNIQUE
		)`,
		`CREATE TABLE blobs (
			repo_id {{int}} NOT NULL REFERENCES repositories (id),
			digest  {{name}} NOT NULL,
			size    {{int}} NOT NULL,
			created {{int}} NOT NULL,
			PRIMARY KEY (repo_id, digest)
		)`,
		// FindBlob looks a digest up across repositories.
		`CREATE INDEX blobs_digest ON blobs (digest)`,
		`CREATE TABLE manifests (
			repo_id       {{int}} NOT NULL REFERENCES repositories (id),
			digest        {{name}} NOT NULL,
			media_type    TEXT NOT NULL,
			artifact_type TEXT NOT NULL,
			size          {{int}} NOT NULL,
			payload       {{bytes}} NOT NULL,
			subject       {{name}} NOT NULL,
			annotations   TEXT,
			refs          TEXT NOT NULL,
			created       {{int}} NOT NULL,
			PRIMARY KEY (repo_id, digest)
		)`,
		// Referrers: filter by subject and artifact type, answer in digest
		// order straight from the index.
		`CREATE INDEX manifests_subject ON manifests (repo_id, subject, artifact_type, digest)`,
		`CREATE TABLE tags (
			repo_id {{int}} NOT NULL,
			name    {{name}} NOT NULL,
			digest  {{name}} NOT NULL,
			updated {{int}} NOT NULL,
			PRIMARY KEY (repo_id, name),
			FOREIGN KEY (repo_id, digest) REFERENCES manifests (repo_id, digest)
		)`,
		// DeleteManifest drops the tags of one digest, and the foreign key
		// check on manifest delete needs the same lookup.
		`CREATE INDEX tags_digest ON tags (repo_id, digest)`,
		`CREATE TABLE uploads (
			id           TEXT PRIMARY KEY,
			repo         {{name}} NOT NULL,
			offset_bytes {{int}} NOT NULL,
			algorithm    TEXT NOT NULL,
			hash_state   {{bytes}},
			backend      {{bytes}},
			created      {{int}} NOT NULL,
			updated      {{int}} NOT NULL
		)`,
		`CREATE INDEX uploads_updated ON uploads (updated)`,
		`CREATE TABLE leases (
			name    TEXT PRIMARY KEY,
			holder  TEXT NOT NULL,
			expires {{int}} NOT NULL
		)`,
	},
}

// SchemaVersion is the version a migrated database is at.
func SchemaVersion() int { return len(migrations) - 1 }

func (s *Store) migrate(ctx context.Context) error {
	// The bookkeeping table comes first, under the lock, so two replicas
	// creating it at once do not collide.
	err := s.migrationTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.sql(`CREATE TABLE IF NOT EXISTS schema_migrations (
			version {{int}} PRIMARY KEY,
			applied {{int}} NOT NULL
		)`))
		return err
	})
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for v := 1; v < len(migrations); v++ {
		err := s.migrationTx(ctx, func(tx *sql.Tx) error {
			var one int
			err := tx.QueryRowContext(ctx, s.sql(`SELECT 1 FROM schema_migrations WHERE version = ?`), v).Scan(&one)
			if err == nil {
				return nil // applied already, by us earlier or by another replica
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			for _, stmt := range migrations[v] {
				if _, err := tx.ExecContext(ctx, s.sql(stmt)); err != nil {
					return err
				}
			}
			_, err = tx.ExecContext(ctx, s.sql(`INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`), v, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
	}
	return nil
}

func (s *Store) migrationTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if s.d.LockMigrations != "" {
		if _, err := tx.ExecContext(ctx, s.d.LockMigrations); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
