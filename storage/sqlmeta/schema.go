package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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
	// Packs (packs.go) and the audit trail (audit.go).
	2: {
		`CREATE TABLE pack_versions (
			id            {{id}},
			name          {{name}} NOT NULL,
			version       {{name}} NOT NULL,
			digest        {{name}} NOT NULL,
			media_type    TEXT NOT NULL,
			artifact_type TEXT NOT NULL,
			size          {{int}} NOT NULL,
			total_size    {{int}} NOT NULL,
			status        {{name}} NOT NULL,
			status_reason TEXT NOT NULL,
			description   TEXT NOT NULL,
			labels        TEXT NOT NULL,
			files         TEXT NOT NULL,
			created       {{int}} NOT NULL,
			updated       {{int}} NOT NULL,
			UNIQUE (name, version)
		)`,
		// Listings are newest first, filtered by status or not: each walks
		// one of these backwards from the cursor, so a page costs its size
		// however many versions there are.
		`CREATE INDEX pack_versions_created ON pack_versions (created, id)`,
		`CREATE INDEX pack_versions_status ON pack_versions (status, created, id)`,
		// The pull gate looks up the versions of one manifest on every pull.
		`CREATE INDEX pack_versions_digest ON pack_versions (name, digest)`,
		`CREATE TABLE pack_labels (
			version_id  {{int}} NOT NULL REFERENCES pack_versions (id) ON DELETE CASCADE,
			label_key   {{name}} NOT NULL,
			label_value {{name}} NOT NULL,
			PRIMARY KEY (label_key, label_value, version_id)
		)`,
		`CREATE INDEX pack_labels_version ON pack_labels (version_id)`,
		// History outlives the version: no foreign key.
		`CREATE TABLE pack_lifecycle (
			id          {{id}},
			name        {{name}} NOT NULL,
			version     {{name}} NOT NULL,
			from_status TEXT NOT NULL,
			to_status   TEXT NOT NULL,
			reason      TEXT NOT NULL,
			actor       TEXT NOT NULL,
			at          {{int}} NOT NULL
		)`,
		`CREATE INDEX pack_lifecycle_version ON pack_lifecycle (name, version, id)`,
		// IDs are handed out by audit_head, not by the database, so they
		// have no gaps and a deleted row shows.
		`CREATE TABLE audit_log (
			id        {{int}} PRIMARY KEY,
			at        {{int}} NOT NULL,
			actor     TEXT NOT NULL,
			action    {{name}} NOT NULL,
			target    {{name}} NOT NULL,
			digest    TEXT NOT NULL,
			details   TEXT NOT NULL,
			prev_hash TEXT NOT NULL,
			hash      TEXT NOT NULL
		)`,
		`CREATE INDEX audit_log_action ON audit_log (action, id)`,
		`CREATE INDEX audit_log_target ON audit_log (target, id)`,
		`CREATE INDEX audit_log_at ON audit_log (at, id)`,
		// One row: the last ID and hash of the chain. Appends update it
		// first, which locks it (a row lock on PostgreSQL, the write lock on
		// SQLite) until they commit: concurrent appends queue and chain.
		`CREATE TABLE audit_head (
			id   {{int}} PRIMARY KEY,
			seq  {{int}} NOT NULL,
			hash TEXT NOT NULL
		)`,
		`INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '')`,
	},
	// The attest key ring and signature records (attest.go).
	3: {
		`CREATE TABLE attest_keys (
			id         TEXT PRIMARY KEY,
			name       {{name}} NOT NULL UNIQUE,
			pem        TEXT NOT NULL,
			algorithm  TEXT NOT NULL,
			state      TEXT NOT NULL,
			not_before {{int}} NOT NULL,
			not_after  {{int}} NOT NULL,
			created    {{int}} NOT NULL,
			updated    {{int}} NOT NULL
		)`,
		// Keyed by repository name, not repositories.id: a record may be
		// written for a referrer whose repository row is being created
		// in another transaction, and records are dropped with their
		// referrer by attest, not by a cascade.
		`CREATE TABLE attest_records (
			repo           {{name}} NOT NULL,
			referrer       {{name}} NOT NULL,
			idx            {{int}} NOT NULL,
			kind           TEXT NOT NULL,
			format         TEXT NOT NULL,
			subject        {{name}} NOT NULL,
			key_id         TEXT NOT NULL,
			algorithm      TEXT NOT NULL,
			predicate_type TEXT NOT NULL,
			sig_hash       TEXT NOT NULL,
			payload_digest TEXT NOT NULL,
			status         {{name}} NOT NULL,
			reason         TEXT NOT NULL,
			recorded       {{int}} NOT NULL,
			checked        {{int}} NOT NULL,
			superseded     {{int}} NOT NULL,
			PRIMARY KEY (repo, referrer, idx)
		)`,
		// Reports read a version's records; the pull gate does it on every
		// pull of a policy-covered repository.
		`CREATE INDEX attest_records_subject ON attest_records (repo, subject)`,
		// GET /api/v1/keys/{id}/signed, and key changes.
		`CREATE INDEX attest_records_key ON attest_records (key_id)`,
		// An altered payload is recognised by its reused signature.
		`CREATE INDEX attest_records_sig ON attest_records (sig_hash)`,
		// A new key re-checks the unverifiable records, walked in key order.
		`CREATE INDEX attest_records_status ON attest_records (status, repo, referrer, idx)`,
	},
	// Mirrors and upstreams, their runs and parity history (mirror.go).
	4: {
		`CREATE TABLE mirrors (
			id      TEXT PRIMARY KEY,
			kind    {{name}} NOT NULL,
			name    {{name}} NOT NULL,
			url     TEXT NOT NULL,
			spec    TEXT NOT NULL,
			secret  TEXT NOT NULL,
			created {{int}} NOT NULL,
			updated {{int}} NOT NULL,
			UNIQUE (kind, name)
		)`,
		`CREATE TABLE mirror_runs (
			id           {{id}},
			mirror_id    TEXT NOT NULL,
			kind         {{name}} NOT NULL,
			trigger_name TEXT NOT NULL,
			scope        TEXT NOT NULL,
			state        {{name}} NOT NULL,
			holder       TEXT NOT NULL,
			counts       TEXT NOT NULL,
			errors       TEXT NOT NULL,
			attempts     {{int}} NOT NULL,
			started      {{int}} NOT NULL,
			updated      {{int}} NOT NULL,
			finished     {{int}} NOT NULL
		)`,
		// The newest runs of a kind (the API, "is a scheduled sync due?").
		`CREATE INDEX mirror_runs_kind ON mirror_runs (mirror_id, kind, id)`,
		// The worker looks for runs to carry on after a restart.
		`CREATE INDEX mirror_runs_state ON mirror_runs (mirror_id, state, id)`,
		`CREATE TABLE parity_checks (
			id        {{id}},
			mirror_id TEXT NOT NULL,
			in_parity {{int}} NOT NULL,
			counts    TEXT NOT NULL,
			started   {{int}} NOT NULL,
			finished  {{int}} NOT NULL
		)`,
		`CREATE INDEX parity_checks_mirror ON parity_checks (mirror_id, id)`,
		// mirror_id is repeated so DeleteMirror drops entries in one statement.
		`CREATE TABLE parity_entries (
			check_id       {{int}} NOT NULL,
			mirror_id      TEXT NOT NULL,
			name           {{name}} NOT NULL,
			version        {{name}} NOT NULL,
			status         {{name}} NOT NULL,
			primary_digest TEXT NOT NULL,
			mirror_digest  TEXT NOT NULL,
			detail         TEXT NOT NULL,
			PRIMARY KEY (check_id, name, version)
		)`,
		`CREATE INDEX parity_entries_status ON parity_entries (check_id, status, name, version)`,
		`CREATE INDEX parity_entries_mirror ON parity_entries (mirror_id)`,
	},
	// How deeply indexes nest in each manifest (storage.Manifest.IndexDepth):
	// the registry caps it at push from the children's values. Indexes
	// already stored get theirs here, level by level: an index is at least
	// k deep when a child of its repository listed in its refs is at least
	// k-1 deep (">=", since SQLite sees rows this very statement raised).
	// Anything deeper than the cap stays at cap+1 (9), which still refuses
	// every index above it.
	5: append([]string{
		`ALTER TABLE manifests ADD COLUMN index_depth {{int}} NOT NULL DEFAULT 0`,
		`UPDATE manifests SET index_depth = 1 WHERE media_type IN
			('application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json')`,
	}, indexDepthBackfill(9)...),
	// Policy that must outlive a delete (manifests.go, attest.go).
	6: {
		// Tags bound to one digest for good (storage.TagClaim): pack
		// versions. By repository name, and no foreign key: a claim
		// outlives its tag, its manifest and even its repository row.
		`CREATE TABLE tag_claims (
			repo    {{name}} NOT NULL,
			tag     {{name}} NOT NULL,
			digest  {{name}} NOT NULL,
			claimed {{int}} NOT NULL,
			PRIMARY KEY (repo, tag)
		)`,
		// Every version published so far is claimed by what it holds.
		`INSERT INTO tag_claims (repo, tag, digest, claimed)
			SELECT name, version, digest, created FROM pack_versions`,
		// When each digest was first pushed to each repository, kept when
		// the manifest is deleted: a re-push takes its created time from
		// here, so a signing window does not open again.
		`CREATE TABLE manifest_first_push (
			repo   {{name}} NOT NULL,
			digest {{name}} NOT NULL,
			at     {{int}} NOT NULL,
			PRIMARY KEY (repo, digest)
		)`,
		`INSERT INTO manifest_first_push (repo, digest, at)
			SELECT r.name, m.digest, m.created FROM manifests m JOIN repositories r ON r.id = m.repo_id`,
		// Attest records keyed by subject too: a referrer tagged as the
		// signature of a second subject adds records about it instead of
		// replacing those about the first. A new table, since neither
		// database changes a primary key in place.
		`CREATE TABLE attest_records_new (
			repo           {{name}} NOT NULL,
			subject        {{name}} NOT NULL,
			referrer       {{name}} NOT NULL,
			idx            {{int}} NOT NULL,
			kind           TEXT NOT NULL,
			format         TEXT NOT NULL,
			key_id         TEXT NOT NULL,
			algorithm      TEXT NOT NULL,
			predicate_type TEXT NOT NULL,
			sig_hash       TEXT NOT NULL,
			payload_digest TEXT NOT NULL,
			status         {{name}} NOT NULL,
			reason         TEXT NOT NULL,
			recorded       {{int}} NOT NULL,
			checked        {{int}} NOT NULL,
			superseded     {{int}} NOT NULL,
			PRIMARY KEY (repo, subject, referrer, idx)
		)`,
		`INSERT INTO attest_records_new (repo, subject, referrer, idx, kind, format, key_id, algorithm,
				predicate_type, sig_hash, payload_digest, status, reason, recorded, checked, superseded)
			SELECT repo, subject, referrer, idx, kind, format, key_id, algorithm,
				predicate_type, sig_hash, payload_digest, status, reason, recorded, checked, superseded
			FROM attest_records`,
		`DROP TABLE attest_records`,
		`ALTER TABLE attest_records_new RENAME TO attest_records`,
		// Reports and the pull gate read by the primary key's (repo,
		// subject) prefix; the pull gate's exemption and deletes read by
		// referrer.
		`CREATE INDEX attest_records_referrer ON attest_records (repo, referrer, subject, idx)`,
		`CREATE INDEX attest_records_key ON attest_records (key_id)`,
		`CREATE INDEX attest_records_sig ON attest_records (sig_hash)`,
		`CREATE INDEX attest_records_status ON attest_records (status, repo, subject, referrer, idx)`,
	},
	// The outbox of events and its consumers (events.go).
	7: {
		`CREATE TABLE event_consumers (
			name {{name}} PRIMARY KEY
		)`,
		// The audit trail consumes events from the start.
		`INSERT INTO event_consumers (name) VALUES ('audit')`,
		// One row per event and consumer, deleted when the consumer
		// acknowledges it: nothing to prune, and each consumer walks its
		// own rows in id order.
		`CREATE TABLE event_queue (
			id       {{id}},
			consumer {{name}} NOT NULL,
			at       {{int}} NOT NULL,
			actor    TEXT NOT NULL,
			action   TEXT NOT NULL,
			target   TEXT NOT NULL,
			digest   TEXT NOT NULL,
			details  TEXT NOT NULL
		)`,
		`CREATE INDEX event_queue_consumer ON event_queue (consumer, id)`,
	},
	// The current attest records of a subject, in order, apart from the
	// superseded ones: every cosign sign in the tag schema supersedes a
	// manifest holding all earlier signatures, so superseded records
	// outgrow current ones, and the pull gate reads only these.
	8: {
		`CREATE INDEX attest_records_current ON attest_records (repo, subject, superseded, recorded, referrer, idx)`,
	},
	// Nothing shared: SQLite rebuilds event_queue so that an event id,
	// once given, is never given again (storage/sqlite's Dialect.Steps).
	9: {},
	// Keyless signatures: what a certificate proves (attest's JSON, ''
	// for key signatures), and the Sigstore trusted roots added through
	// the API.
	10: {
		`ALTER TABLE attest_records ADD COLUMN keyless TEXT NOT NULL DEFAULT ''`,
		`CREATE TABLE attest_trusted_roots (
			name    {{name}} PRIMARY KEY,
			body    TEXT NOT NULL,
			digest  TEXT NOT NULL,
			created {{int}} NOT NULL
		)`,
	},
	// Offline bundles: what a key is trusted for (comma-separated usages;
	// the keys of earlier releases vouched for signatures), the imports
	// with their reports, and the chains of bundles applied here.
	11: {
		`ALTER TABLE attest_keys ADD COLUMN usages TEXT NOT NULL DEFAULT 'signatures'`,
		`CREATE TABLE bundle_imports (
			id            TEXT PRIMARY KEY,
			state         TEXT NOT NULL,
			actor         TEXT NOT NULL,
			bundle_digest TEXT NOT NULL,
			chain         TEXT NOT NULL,
			sequence      {{int}} NOT NULL,
			report        TEXT NOT NULL,
			created       {{int}} NOT NULL,
			updated       {{int}} NOT NULL
		)`,
		`CREATE INDEX bundle_imports_created ON bundle_imports (created, id)`,
		// One row per applied bundle; a chain's position is taken once.
		`CREATE TABLE bundle_chains (
			digest    {{name}} PRIMARY KEY,
			chain     {{name}} NOT NULL,
			sequence  {{int}} NOT NULL,
			previous  TEXT NOT NULL,
			import_id TEXT NOT NULL,
			applied   {{int}} NOT NULL,
			UNIQUE (chain, sequence)
		)`,
	},
	// Robot accounts of package auth (robots.go).
	12: {
		`CREATE TABLE robots (
			name        {{name}} PRIMARY KEY,
			secret_hash TEXT NOT NULL,
			rules       TEXT NOT NULL,
			expires     {{int}} NOT NULL,
			disabled    {{int}} NOT NULL,
			created     {{int}} NOT NULL,
			created_by  TEXT NOT NULL
		)`,
	},
	// Compliance (compliance.go): the findings per pack version, the
	// versions' verified attestation types (what coverage counts), the
	// rules put through the API, and snapshots of the counts.
	13: {
		`CREATE TABLE compliance_versions (
			name         {{name}} NOT NULL,
			version      {{name}} NOT NULL,
			digest       TEXT NOT NULL,
			lifecycle    {{name}} NOT NULL,
			verification {{name}} NOT NULL,
			attested     {{int}} NOT NULL,
			attestations TEXT NOT NULL,
			compliant    {{int}} NOT NULL,
			findings     TEXT NOT NULL,
			evaluated    {{int}} NOT NULL,
			PRIMARY KEY (name, version)
		)`,
		// The failing (or compliant) versions, a page at a time in name order.
		`CREATE INDEX compliance_versions_compliant ON compliance_versions (compliant, name, version)`,
		// The summary's GROUP BY reads this index alone, in its order.
		`CREATE INDEX compliance_versions_tally ON compliance_versions (name, verification, lifecycle, compliant, attested, evaluated)`,
		// Rows only for versions not deleted, so coverage needs no join.
		`CREATE TABLE compliance_attestations (
			name           {{name}} NOT NULL,
			version        {{name}} NOT NULL,
			predicate_type {{name}} NOT NULL,
			PRIMARY KEY (name, version, predicate_type)
		)`,
		`CREATE INDEX compliance_attestations_type ON compliance_attestations (name, predicate_type)`,
		`CREATE TABLE compliance_rules (
			id      {{int}} PRIMARY KEY,
			body    TEXT NOT NULL,
			updated {{int}} NOT NULL
		)`,
		`CREATE TABLE compliance_snapshots (
			at     {{int}} PRIMARY KEY,
			counts TEXT NOT NULL
		)`,
	},
	// Online garbage collection (gc.go): when a manifest was last pushed
	// and a blob last linked (the grace period counts from there, not
	// from the first push), the tombstones of blob bytes being deleted,
	// the record of every run; and the blobs a scrub found bad.
	14: {
		`ALTER TABLE manifests ADD COLUMN pushed {{int}} NOT NULL DEFAULT 0`,
		`UPDATE manifests SET pushed = created`,
		`ALTER TABLE blobs ADD COLUMN linked {{int}} NOT NULL DEFAULT 0`,
		`UPDATE blobs SET linked = created`,
		`CREATE TABLE gc_tombstones (
			digest {{name}} PRIMARY KEY,
			at     {{int}} NOT NULL
		)`,
		`CREATE TABLE gc_runs (
			id           {{id}},
			dry_run      {{int}} NOT NULL,
			trigger_name TEXT NOT NULL,
			started      {{int}} NOT NULL,
			finished     {{int}} NOT NULL,
			error        TEXT NOT NULL,
			counts       TEXT NOT NULL
		)`,
		// Blobs whose stored bytes a scrub found not to match their
		// digest: the read path refuses them.
		`CREATE TABLE bad_blobs (
			digest {{name}} PRIMARY KEY,
			found  {{int}} NOT NULL,
			detail TEXT NOT NULL
		)`,
	},
	// Retention runs (package retention): the record of each, as gc_runs.
	15: {
		`CREATE TABLE retention_runs (
			id           {{id}},
			dry_run      {{int}} NOT NULL,
			trigger_name TEXT NOT NULL,
			started      {{int}} NOT NULL,
			finished     {{int}} NOT NULL,
			error        TEXT NOT NULL,
			counts       TEXT NOT NULL
		)`,
	},
	// The actions an outbox consumer does nothing with (events.go), so
	// they are never queued for it: a blob push would otherwise cost
	// every consumer a queue row, a wake-up and an acknowledgement.
	16: {
		`CREATE TABLE event_consumer_skips (
			consumer {{name}} NOT NULL,
			action   {{name}} NOT NULL,
			PRIMARY KEY (consumer, action)
		)`,
	},
	// Nothing shared: SQLite rebuilds blobs WITHOUT ROWID, so that a
	// link writes its row into the primary key's b-tree alone
	// (storage/sqlite's Dialect.Steps).
	17: {},
	// Referrers look up manifests by subject, which most manifests (every
	// image without one) leave empty: their entries, at the digest's
	// random place, cost each such push a page of the index (and its
	// WAL frame on SQLite) that no query reads. Referrers asks for
	// subject <> '' too, so the partial index serves it. SQLite also
	// rebuilds manifest_first_push WITHOUT ROWID (its Steps).
	18: {
		`DROP INDEX manifests_subject`,
		`CREATE INDEX manifests_subject ON manifests (repo_id, subject, artifact_type, digest) WHERE subject <> ''`,
	},
	// EndBlobDelete ends a tombstone rather than deleting it, so a writer
	// can tell that no delete of a digest began since its bytes were
	// written (storage.DeleteHistory); 0: not ended.
	19: {
		`ALTER TABLE gc_tombstones ADD COLUMN ended {{int}} NOT NULL DEFAULT 0`,
	},
	// Nothing shared: PostgreSQL drops the foreign key from manifests to
	// repositories, and keys event_queue by (consumer, id), its one index
	// (storage/postgres's Dialect.Steps).
	20: {},
	// A consumer may skip an action but for some targets
	// (storage.SkipExcept): attest wants the moves of cosign's tags only,
	// not a queue row of every tag moved. '': skipped for every target.
	21: {
		`ALTER TABLE event_consumer_skips ADD COLUMN except_like TEXT NOT NULL DEFAULT ''`,
	},
}

// indexDepthBackfill raises the stored indexes' depth from 2 up to max.
// Part of step 5: never change it.
func indexDepthBackfill(max int) []string {
	var out []string
	for k := 2; k <= max; k++ {
		out = append(out, fmt.Sprintf(`UPDATE manifests SET index_depth = %[1]d
			WHERE index_depth = %[2]d AND EXISTS (SELECT 1 FROM manifests c
				WHERE c.repo_id = manifests.repo_id AND c.index_depth >= %[2]d
				AND manifests.refs LIKE '%%' || c.digest || '%%')`, k, k-1))
	}
	return out
}

// SchemaVersion is the version a migrated database is at.
func SchemaVersion() int { return len(migrations) - 1 }

func (s *Store) migrate(ctx context.Context) error { return s.migrateTo(ctx, SchemaVersion()) }

// migrateTo applies the steps up to version (tests: a database as an
// older release left it).
func (s *Store) migrateTo(ctx context.Context, version int) error {
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
	for v := 1; v <= version; v++ {
		err := s.migrationTx(ctx, func(tx *sql.Tx) error {
			var one int
			err := tx.QueryRowContext(ctx, s.sql(`SELECT 1 FROM schema_migrations WHERE version = ?`), v).Scan(&one)
			if err == nil {
				return nil // applied already, by us earlier or by another replica
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			for _, stmt := range slices.Concat(migrations[v], s.d.Steps[v]) {
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
