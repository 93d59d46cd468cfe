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
// pushes of a claimed tag is refused with 403 DENIED).
//
// Layout of the files: routes.go lists the /v2/ rows of the route table
// (Routes, matched by gorilla/mux from the end of the path; cmd registers
// them, ServeHTTP serves them alone) and checks every path and name before
// a handler runs; errors.go is the one table from errors to HTTP, names.go
// reads references (tag or digest), and blobs.go, uploads.go, manifests.go,
// tags.go and referrers.go each handle one resource.
//
// Routing by gorilla/mux costs about 2.7 µs per request on this machine's
// cores (a template regexp and its variables) where the hand-written split
// from the end cost tens of nanoseconds: a few percent of an in-process
// manifest GET, below the noise of one over the wire. Each row's literals
// are tested before its regexp, so a request pays for one or two regexps,
// not for every row.
//
// The vocabulary it checks against is package oci's: the name and tag
// grammars, the manifest media types, the Document a body is validated as,
// and the referrers index and fallback tag.
//
// registry imports storage, oci, digest, internal/reqid and
// internal/routes; it must not import pack, attest, mirror, compliance or
// cmd.
package registry
