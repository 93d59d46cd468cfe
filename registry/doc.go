// Package registry serves the OCI distribution v1.1 API (/v2/): blobs,
// uploads (monolithic, chunked, cross-repo mount), manifests, tags,
// referrers and the catalog, over a storage.BlobStore and a storage.Metadata.
//
// It owns OCI semantics: name, tag and digest validation, manifest parsing
// and reference checks, the error envelope and status codes. It knows
// nothing about packs, signatures or mirrors: it tells subscribers what
// changed (Event) and asks an Admitter before accepting a manifest, and cmd
// plugs the pack and attest packages in there. An Admitter that is also a
// TagClaimer names tags to bind to the manifest's digest for good; the
// metadata store checks and takes those claims in the transaction that
// writes the tags, so admission cannot be raced (one of two concurrent
// pushes of a claimed tag is refused with 403 DENIED). One that is also an
// Indexer names the index changes (storage.IndexChanges) a push or a
// delete brings, written by that same transaction. Hooks get the manifest
// as the registry parsed it (ManifestCandidate), and the config bytes
// when they asked for its media type (WithInlineConfig): a push parses
// its manifest once.
//
// One door: the service methods (service.go: PushBlob, PushManifest,
// Manifest, OpenBlob, StatBlob, MountBlob, Referrers, Tags...) and the
// cores beside them (upload.go for blob writes and upload sessions,
// manifests.go for manifest pushes) are the only implementation. The HTTP
// handlers parse a request, call them and render the answer; pack
// publish, attest and mirror call the same methods.
//
// Rights: it knows no identity, but a request's context may carry the
// caller's rights (WithAccess, installed by cmd's auth gate), and it asks
// them (Allowed) where only it knows what a request does: a manifest push
// that would move a tag pointing elsewhere needs "overwrite", decided on
// the tag's state, which becomes a condition of the write (TagWas); a
// mount from a repository the caller may not pull (or without "from") is
// an ordinary upload; the catalog lists only pullable names. Without
// rights in the context (auth off, the server's own work, a pull-through
// fill) everything is allowed. A refusal is the AccessFunc's own error,
// answered with its kind and headers (oci.HeaderOf: the challenge).
//
// Errors are package oci's sentinel kinds (oci.ErrBlobUnknown,
// oci.ErrDenied...) wrapped with the client's message (oci.Errorf); each
// kind carries its code and status, the one table both HTTP edges (this
// one and apierr's) read. Callers ask errors.Is; nothing tells errors
// apart by status.
//
// Layout of the files: routes.go lists the /v2/ rows of the route table
// (Routes, matched from the end of the path by routes.Fast; cmd registers
// them, ServeHTTP serves them alone) and checks every path and name before
// a handler runs; errors.go writes every error answer, names.go reads
// references (tag or digest), and blobs.go, uploads.go, manifests.go,
// tags.go and referrers.go each handle one resource.
//
// Routing: the /v2/ rows are few and fixed in shape, so routes.Fast
// matches them from the end of the path by hand (no regexp, no request
// copy, variables set with SetPathValue); they are registered on cmd's
// gorilla/mux table too, which enumerates them and answers every other
// path. Fast answers exactly as the templates' regexps would (a
// differential test and fuzz target in internal/routes hold it to mux):
// mux's match, its two request copies and its vars map were 8 of a
// manifest GET's 81 allocations (BenchmarkManifestGet, 81 -> 73).
//
// gc.go is online garbage collection (CollectGarbage: mark over the
// metadata store, each delete re-checked by the store in its own
// transaction, blob bytes under a tombstone handshake with concurrent
// pushes) and scrub.go re-hashes stored blobs (Scrub) and refuses reads of
// the ones found bad; WithGCObserver and WithScrubObserver hand finished
// runs to metrics.
//
// The vocabulary it checks against is package oci's: the name and tag
// grammars, the manifest media types, the Document a body is validated as,
// and the referrers index and fallback tag.
//
// registry imports storage, oci, digest, internal/reqid and
// internal/routes; it must not import pack, attest, mirror, compliance or
// cmd.
package registry
