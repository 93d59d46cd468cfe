// Package compliance judges the registry as a whole against rules, and
// answers from what it judged: a summary at a glance, the versions that
// pass or fail with their reasons, and the counts over time.
//
// It only reads what other packages record: the pack index (versions,
// lifecycle), attest's verdicts through a Verifier (cmd adapts attest's
// report: the verdict word, verified predicate types, the newest verified
// signature), and the mirrors' latest parity checks. It verifies nothing
// and changes nothing outside its own records.
//
// Rules (rules.go) apply per repository pattern (internal/repopattern, as
// attest.policies read them): a signature required, attestation predicate
// types required ("*" for any), a maximum age of the newest verified
// signature or attestation, the lifecycle states allowed, parity on named
// mirrors. One policy language with attest.policies: each attest policy is
// read as a rule that enforces (Enforce true, named "attest.policies[i]",
// require_signature and verify_before_visible as requireSignature,
// required_attestations as requiredAttestations; first match wins, as at
// the pull gate), and the rules of compliance.rules or of PUT
// /api/v1/compliance/rules only report (every matching one applies). A
// rule that should refuse pulls belongs in attest.policies; rules put
// through the API never enforce, so the API cannot loosen or tighten the
// gate.
//
// One finding is built in: a version holding a blob (its manifest, its
// config or a file) that a scrub found bad (storage's bad blobs, read once
// per pass) fails "blob-integrity", whatever the rules; the scrub's
// blob.corrupt event re-evaluates every version, and so does its
// blob.repaired when a later scrub finds the bytes sound again or a push
// of the blob replaces them.
//
// Evaluation (worker.go) is a consumer of the metadata store's outbox,
// like the audit trail and attest: each event re-evaluates the versions of
// its repository, or every version for key, root, mirror and rule
// changes; a new parity check of a named mirror, and the passing of time
// (age rules), re-evaluate everything every ReevaluateEvery. One worker at
// a time, under a lease kept across steps (storage.KeptLease); a wake-up
// within 50 ms of the last step waits for the rest of that time, so one
// step takes a burst of pushes. The findings are stored per version
// (storage.Compliance) with what they were judged from, and the counts
// are snapshot per step for the history. A page view or an API call reads
// them and never evaluates.
//
// compliance imports storage, registry (the request's actor), the leaves
// digest, internal/apierr, internal/routes, internal/repopattern and
// internal/restclient (Client, for the CLI) (depcheck_test.go); it must not import attest, pack, mirror, audit or
// cmd, and none of them imports it.
package compliance
