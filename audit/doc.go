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
// Why in the writing transaction: a change and its record must not be
// separable by a crash. Each writer records its events in the transaction
// that makes the change, and once Watch ran the store appends their
// records there too (storage.InlineAuditor), extending the chain last,
// after the writer's own row locks: one commit per change. Appending in a
// second transaction right after the commit (the outbox drain,
// storage.Outbox.AuditEvents) cost every write a second commit and fsync,
// about a tenth of a manifest PUT's CPU on SQLite. On PostgreSQL the head
// row's lock is held until each inline writer's commit, so inline writers
// take turns there for the length of a commit: a write appends inline
// only when it is its replica's only write under way, and otherwise (or
// when the head stays locked longer than a second: another replica, an
// operator) queues its events in the outbox, in its own transaction
// still, commits alongside the others, and Watch's listener has them
// recorded right after the commit, behind the client's answer (waiting
// for that drain was most of a manifest PUT's time at 16 clients): the
// writes that commit meanwhile share one drain, one turn at the head, and
// every read of the trail drains the queue first, on any replica, so a
// client that reads the trail after its write sees the write's record.
// The outbox also carries what an earlier run queued (a crash between the
// answer and the drain), and the events of stores that cannot append
// inline: Flush at start and Run record them.
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
