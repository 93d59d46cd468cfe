// Package audit records the audit trail and serves it: Recorder turns the
// events of the metadata store's outbox (blob and manifest pushes, tag
// moves, deletes, key and mirror changes) into records, one each, and
// records configuration changes between starts (once, also when replicas
// start together: the store compares and appends in one step under the
// chain head's lock); Routes are the route table's rows for
// GET /api/v1/audit (filtered, newest first, keyset pages) and
// GET /api/v1/audit/verify, which recomputes the hash chain, names the
// first record that was deleted or edited, and counts the changes whose
// records are still queued.
//
// Why an outbox: a change and its record must not be separable by a
// crash. Each writer records an event in the transaction that makes the
// change (storage.Outbox); the recorder appends the record and
// acknowledges the event in one transaction under the chain head's lock
// (storage.Outbox.AuditEvents), right after the commit (Watch), and what
// that could not do is done at the next start (Flush) or within seconds
// (Run). Appending to the chain inside every change's own transaction
// would do too, but would make every push on every replica wait for the
// one head row.
//
// Records live in the metadata store (storage.AuditLog), one hash chain
// for the whole registry; storage.VerifyAudit is the verification. Pack
// publications and lifecycle changes are recorded by package pack, in the
// transaction that makes them.
//
// The compliance package will take the query side over. audit imports
// storage and internal/apierr, and nothing else of packreg (its
// depcheck_test.go is an allow-list); it must not import registry, pack,
// attest, mirror, compliance or cmd.
package audit
