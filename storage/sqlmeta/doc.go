// Package sqlmeta implements storage.Store, every role of the metadata
// store, once, over database/sql, for every SQL database packreg supports. A backend package (storage/sqlite,
// storage/postgres) opens the driver and passes a Dialect: placeholder
// style, column types, the database clock, the migration lock, how to
// read its errors and the rare migration statements of its own.
// Everything else, queries and schema, is shared.
//
// Tables (schema.go holds the migrations; append only):
//
//	repositories  id PK, name UNIQUE
//	     │ 1
//	     ├──< blobs      (repo_id, digest) PK, size, created
//	     │                 INDEX (digest)                     -- FindBlob
//	     ├──< manifests  (repo_id, digest) PK, media_type, artifact_type,
//	     │               size, payload, subject, annotations (JSON), refs
//	     │               (newline separated), created
//	     │                 INDEX (repo_id, subject, artifact_type, digest)
//	     │                   WHERE subject <> ''              -- Referrers
//	     │        │ 1
//	     └──< tags ─┘ >  (repo_id, name) PK, digest, updated  -- keyset pages
//	                       FK (repo_id, digest) → manifests; INDEX (repo_id, digest)
//
//	uploads            id PK, repo, offset_bytes, algorithm, hash_state,
//	                   backend, created, updated; INDEX (updated)
//	leases             name PK, holder, expires
//	schema_migrations  version PK, applied
//
// Later migrations (their statements and comments are in schema.go), by the
// file that queries them:
//
//	2 packs.go   pack_versions, pack_labels, pack_lifecycle (storage.Packs)
//	             (packjson.go reads its files and labels columns back)
//	  audit.go   audit_log, audit_head: the hash chain (storage.AuditLog)
//	3 attest.go  attest_keys, attest_records (storage.Attest)
//	4 mirror.go  mirrors, mirror_runs, parity_checks, parity_entries
//	             (storage.Remotes, storage.Runs, storage.Parity)
//	5 manifests.go  manifests.index_depth (storage.Manifest.IndexDepth),
//	             computed for the indexes already stored
//	6 manifests.go  tag_claims (storage.TagClaim), manifest_first_push
//	  attest.go     attest_records again, keyed by (repo, subject, referrer, idx)
//	7 events.go  event_consumers, event_queue: the outbox (storage.Outbox),
//	             one row per event and consumer
//	8 attest.go  attest_records_current, the pull gate's index
//	9 events.go  SQLite only (its Dialect.Steps): event_queue again with
//	             AUTOINCREMENT ids, never given twice
//	16 events.go event_consumer_skips: the actions never queued for a
//	             consumer (storage.Outbox.AddEventConsumer's skip)
//	17 repos.go  SQLite only (its Dialect.Steps): blobs again, WITHOUT
//	             ROWID, a page fewer written per link
//	20 manifests.go  PostgreSQL only (its Dialect.Steps): manifests'
//	             foreign key to repositories dropped, a row lock fewer per put;
//	             event_queue keyed by (consumer, id), its only index
//	21 events.go event_consumer_skips.except_like: an action skipped but
//	             for some targets (storage.SkipExcept)
//	   manifests.go PostgreSQL only (its Dialect.Steps): tags' foreign key
//	             to manifests dropped, a query and a row lock fewer per put;
//	             deletes lock the manifest's row before reading its tags
//
// Times are Unix nanoseconds (0 is the zero time); lease expiry uses the
// database clock so replicas agree. Name, tag and digest columns compare
// byte by byte (SQLite BINARY, Postgres COLLATE "C"), which is the order
// the OCI API paginates in.
//
// Errors: no rows becomes storage.ErrNotFound; an outage (connection
// refused, shutdown, closed pool, disk full...) wraps
// storage.ErrUnavailable; lost races inside the database (serialization
// failure, deadlock) are retried, then reported as ErrUnavailable.
//
// A repository's row is never deleted (one whose content is all gone
// stays, and no longer counts): the store remembers the ids it saw
// committed and writes into those repositories without reading the id
// again (repoids.go). A statement that deleted repositories would have to
// forget them first.
//
// Audit records are appended in the writing transaction once AuditInline
// ran; on PostgreSQL only by a write that is its store's only one under
// way, the others queue theirs for the drain, which concurrent writers
// share (auditturn.go). Under group commit, the writes of a batch that
// record events leave their records with the batch, which appends them at
// once, in the writes' order (batchaudit.go).
//
// On a dialect with WritableCTE, a manifest put without claims,
// conditions or pack index changes is one statement in autocommit, after
// a read of its references (manifestone.go): two round trips, not five.
//
// On a dialect with Pipeline, a blob link into a known repository sends
// its transaction as two pipelines, the second ending with its COMMIT and
// LinkBlobConfirmed's tombstone read (linkpipe.go): two round trips, not
// seven.
//
// With Options.GroupCommit, concurrent writes share one transaction, each
// in a savepoint (group.go): SQLite pays one fsync for many writers. A
// write with no other about runs on its caller's goroutine, not the loop's.
//
// sqlmeta knows records, not HTTP or OCI: it imports storage and the
// leaves digest and oci only, never registry, pack, attest, mirror,
// compliance or cmd, nor any database driver (depcheck_test.go).
package sqlmeta
