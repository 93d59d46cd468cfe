// Package retention retires pack versions by rules: per repository
// pattern (the first rule that covers a pack governs it), keep the N
// newest active versions and deprecate or archive the older active ones,
// deprecate or archive versions older than a duration, and delete
// versions archived for longer than a duration, except those signed and
// verified unless the rule says force.
//
// A run reads the pack index, plans (Plan: a pure function of the rules,
// the time and the versions, one item per covered version with its
// action and reason), and, unless it is a dry run, applies the plan item
// by item. A dry run and a real run are the same plan, so what a dry run
// lists is what a real run at that moment does. Lifecycle changes go
// through the packs API's own path (pack.Service.SetLifecycle: transition
// rules, history, index, audit record in one transaction), deletes through
// the registry's (DeleteTag: the tag goes, the pack index records the
// version deleted, both audited), all as actor "retention"; garbage
// collection then frees the bytes nothing references any more. A delete
// re-reads the version first and leaves it if it is no longer the
// archived content the plan saw. Every run is recorded
// (storage.RetentionRuns) with its counts and error.
//
// Scheduling, the lease that lets one replica at a time run, the HTTP
// routes and the CLI are cmd's (cmd/packreg/retention.go), as for garbage
// collection.
//
// retention imports pack (the lifecycle path and the signature report),
// registry (the actor of a context), storage, semver, digest and
// internal/repopattern; it must not import attest, mirror, compliance, cmd
// or a storage backend (depcheck_test.go).
package retention
