// Package storage defines the two stores packreg keeps its state in, and the
// records they hold:
//
//   - a BlobStore: content-addressed, immutable bytes (layers, configs), plus
//     the in-progress data of upload sessions. Implementations: storage/fs
//     (local disk) and storage/s3.
//   - a metadata Store: repositories, per-repository blob membership,
//     manifests (with their exact bytes), tags, referrers, upload sessions
//     and leases (storage.go: Metadata, the registry's part), plus the
//     records of the packages above the registry, each a role interface of
//     its own: pack versions and lifecycle (packs.go: Packs), the
//     hash-chained audit trail (audit.go: AuditLog), keys and verification
//     records (attest.go: Attest), mirrors, their runs and parity history
//     (mirror.go: Remotes, Runs, Parity), the compliance findings, rules
//     and snapshots (compliance.go: Compliance). Store composes them all; every
//     role is required. Implementations share one SQL schema
//     (storage/sqlmeta) over SQLite (storage/sqlite) and PostgreSQL
//     (storage/postgres).
//
// Optional abilities are small interfaces found by type assertion:
// Redirector, UploadPurger and BlobWalker of a BlobStore, BlobSender of
// a body it opens, and Pinger (readiness) and OpsObservable (every
// backend operation timed, for metrics: observe.go) of either store. A
// push that may replace a blob's bad bytes carries a BadCheck in its
// context, which the blob store asks when it finds the blob stored
// (repair.go).
//
// The writing methods take the Events a change stands for and record them
// in the store's outbox in the same transaction (events.go): what must
// follow a change (its audit record, signature indexing) is queued with
// it and survives any crash after it. Consumers drain and acknowledge it.
// A manifest push or delete also takes the pack index changes it brings
// (IndexChanges, packs.go) and makes them in its transaction, their events
// recorded after its own: the index cannot disagree with the tags.
//
// Manifest bytes live in the metadata store, not the blob store: a manifest
// PUT is then one transaction (one fsync) and a manifest GET never costs an
// object-store round trip on S3.
//
// Every backend passes the shared suites in storage/blobtest and
// storage/metatest unchanged.
//
// storage knows digests and records, never HTTP or OCI semantics; a
// referrer is listed as an oci.Descriptor, the one descriptor type. It
// imports the leaves digest and oci only (depcheck_test.go), and must not
// import registry, pack, attest, mirror, compliance or cmd.
package storage
