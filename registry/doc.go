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
// Layout of the files: routes.go dispatches /v2/ paths, errors.go is the one
// table from errors to HTTP, names.go reads references (tag or digest), and
// blobs.go, uploads.go, manifests.go, tags.go and referrers.go each handle one
// resource.
//
// The vocabulary it checks against is package oci's: the name and tag
// grammars, the manifest media types, the Document a body is validated as,
// and the referrers index and fallback tag.
//
// registry imports storage, oci and digest; it must not import pack, attest,
// mirror, compliance or cmd.
package registry
