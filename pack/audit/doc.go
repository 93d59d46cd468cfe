// Package audit records the audit trail and serves it: Recorder turns
// every registry event (blob and manifest pushes, tag moves, deletes) into
// one record, and records configuration changes; Handler serves
// GET /api/v1/audit (filtered, newest first, keyset pages) and
// GET /api/v1/audit/verify, which recomputes the hash chain and names the
// first record that was deleted or edited.
//
// Records live in the metadata store (storage.AuditLog), one hash chain
// for the whole registry; storage.VerifyAudit is the verification. Pack
// publications and lifecycle changes are recorded by package pack, in the
// transaction that makes them.
//
// The compliance package will take the query side over. audit imports
// registry, storage and pack/apierr; it must not import pack, attest,
// mirror, compliance or cmd.
package audit
