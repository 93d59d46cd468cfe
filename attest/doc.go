// Package attest recognises, verifies, records, reports and enforces
// signatures and attestations of what the registry holds.
//
// What it reads. cosign v2.6.5 stores things three ways, and attest reads
// all of them (sigmanifest.go): the tag schema (sha256-<hex>.sig manifests
// of simple-signing layers, sha256-<hex>.att manifests of DSSE envelopes),
// OCI 1.1 referrers (--registry-referrers-mode=oci-1-1), and sigstore
// bundles v0.3 (--new-bundle-format; cosign signs images there with a DSSE
// envelope whose predicate type is https://sigstore.dev/cosign/sign/v1, and
// a messageSignature over the subject manifest bytes is read too). Each
// signature becomes a storage.AttestRecord linked to its subject digest.
//
// How it verifies. Exactly, over the bytes that were signed: the
// simple-signing layer (whose critical.image.docker-manifest-digest must be
// the subject), the DSSE pre-authentication encoding (whose in-toto subject
// digests must include the subject), the subject manifest for a message
// signature. Layer bytes are re-hashed against their descriptor, so content
// altered at rest fails. Every parsed document is rejected if it holds a
// duplicate key or trailing data (strictjson.go), since two parsers reading
// one document differently is how signature checks get bypassed. A
// signature no known key verifies is "unverifiable" (untrusted), unless it
// names its key (bundle hint, DSSE keyid) and that key fails it, or the
// same signature bytes once verified over other content: then it is
// "failed" (invalid), because the content was altered.
//
// Keys and time. The key ring (keyring.go) holds PEM public keys: RSA
// 2048/3072/4096 (PKCS#1 v1.5 and PSS), ECDSA P-256/P-384/P-521 and
// Ed25519 (pure and Ed25519ph, which cosign uses for images), with a
// validity window and a state. A record stores what the bytes prove; its
// reported status applies the key as it is now to the time the record was
// first seen, so retiring a key (closing its window) keeps what it signed
// before and refuses what it signs after, revoking withdraws everything,
// and neither needs a re-check. Adding a key re-checks the records no key
// could verify.
//
// Keyless (keyless.go, roots.go, identity.go). A signature made with a
// Fulcio certificate is verified with sigstore-go against the trusted
// roots (trusted_root.json files of attest.trusted_roots, re-read when
// they change, and roots added through /api/v1/trusted-roots): the
// certificate chains to a trusted Fulcio CA at a signing time proven by a
// Rekor entry (signed entry timestamp; inclusion proof and checkpoint
// when present) or an RFC 3161 timestamp, and the signature covers the
// exact bytes. cosign's tag-schema and OCI 1.1 annotations are read into
// a sigstore-go signed entity (certEntity); bundles are sigstore-go's own.
// The record stores what that proves (Keyless: the signer's identity, the
// root, the signing time and how it was proven, and the digest of the
// root set it was checked under); the report applies the roots and the
// policy's identities as they are now (judgeKeyless), so changing either
// re-parses nothing. A root change re-checks the keyless records checked
// under another root set (recheckKeyless).
//
// Libraries. Keys are parsed and signatures checked with
// github.com/sigstore/sigstore/pkg/signature and pkg/cryptoutils, the code
// cosign itself verifies with. Keyless signatures are verified with
// sigstore-go (v1.3.0: the last that builds with this Go), whose
// verifier and identity matcher are cosign's; it costs the binary about
// 10 MB (56 modules: Rekor's and the TUF client's, gRPC, OpenTelemetry),
// measured when it came in. It stays offline: trusted roots come only
// from files and the API (root.NewTrustedRootFromJSON), never
// FetchTrustedRoot or a TUF client, and verification reads only what the
// signature carries. github.com/sigstore/cosign/v2 is not imported:
// sigstore-go lacks nothing this needs. Key-based verification stays on
// its own few hundred lines, and the bundle JSON is read with
// encoding/json into the few fields it uses before sigstore-go reads a
// keyless one into its own types.
//
// Records are keyed by (repository, subject, referrer, index): a referrer
// reached as the signature of two subjects has findings about each, and
// indexing it for one never rewrites the other's. A record is current
// until superseded: its .sig/.att tag moved to a newer manifest (cosign's
// next signing, which repeats every earlier signature), or a signature
// posted through the API replaced it. Superseded records stay as history
// (a report lists the most recent, MaxSupersededShown) but decide nothing
// and count toward no cap. What one subject can hold current is capped
// (Config.MaxReferrersPerSubject, MaxRecordsPerSubject); past a cap a
// failed finding names the limit, and the pull gate never reads more than
// the cap, nor any superseded record.
//
// Policy (policy.go, per repository pattern, first match wins, permissive
// by default): require_signature makes CheckPull refuse unsigned or invalid
// manifests, by tag and by digest, except by digest within signing_window
// after the first push of that digest (the manifest's Created, kept
// across delete and re-push), because cosign reads what it signs; exempt
// are only manifests indexed as signatures or attestations of another
// manifest, never a pack (WithGatedTypes);
// verify_before_visible keeps a version pending (tag pulls refused, left
// out of pack listings) until it is verified; required_attestations lists
// predicate types that must each have a verified attestation.
//
// Indexing work (worker.go) is the metadata store's outbox of events,
// which every change records in its own transaction: attest subscribes as
// a consumer before the registry serves (Subscribe), and one worker (Run,
// one replica at a time under a lease) takes the events in order and
// acknowledges them once indexed. Nothing is dropped when pushes outrun
// the worker, nor lost when the process dies; indexing is a moment behind
// the push. The worker keeps its lease across drains (storage.KeptLease)
// and, woken within 20 ms of its last drain, waits for the rest of that
// time, so a stream of pushes costs one lease write per TTL/3 and one
// acknowledgement per drain, not one each per push. Key ring changes record their events (key.add, key.retire,
// key.revoke) the same way: the audit trail records them, and key.add
// tells the worker to re-check what no key could verify.
//
// Wiring. cmd gives attest the registry as its Source and Publisher (its
// service methods) and the pack index as its VersionResolver, calls
// Subscribe and runs Run, installs CheckPull as a registry.PullGate,
// registers Routes in the route table (/api/v1/keys, and a version's
// signatures/attestations/verification below /api/v1/packs, resolved
// through the VersionResolver), and adapts Evaluate to the pack API's
// version responses.
//
// The media types, annotations and tag schema of these layouts are
// package oci's (oci.ParseCosignTag is the one reader of cosign's tags);
// attest adds what is inside them: payloads, envelopes, statements.
//
// attest imports registry, storage, apierr, sigstore's signature packages,
// sigstore-go's verify, root, bundle, tlog and certificate packages, and
// the leaves (oci, digest); depcheck_test.go lists them. It must not
// import pack, mirror, compliance or cmd, and registry never imports it.
package attest
