// Package bundle carries packs into air-gapped sites and back: it exports
// pack versions of this registry, with everything under them, every
// referrer (signatures, attestations, SBOMs), their lifecycle states and
// their audit history, into a signed offline bundle, and imports such
// bundles, checking every byte before anything becomes visible.
//
// A bundle is an OCI image layout, as one tar (or its directory form):
//
//	oci-layout                     {"imageLayoutVersion":"1.0.0"}
//	index.json                     the layout's index, entries in this order:
//	  packreg-bundle               the bundle's manifest (artifactType application/vnd.packreg.bundle.v1)
//	  packreg-bundle.sig           its signature (absent when unsigned)
//	  acme..rules_1.2.0            a pack version carried whole: RefName, the name's "/" as "..",
//	                               "_", the version; annotated vnd.packreg.bundle.name/version
//	  sha256-<hex>                 a referrers fallback index per subject (oci.ReferrersTag)
//	blobs/sha256/<hex>             every manifest and blob, by digest, byte for byte
//
// One version is found by its name in index.json, which is a tag, so
// `oras cp --from-oci-layout DIR:acme..rules_1.2.0 REG/acme/rules:1.2.0`
// and `regctl image copy --referrers ocidir://DIR:acme..rules_1.2.0 ...`
// copy it out unchanged (same digest), its referrers with it (the
// fallback indexes are where regctl looks for them in a layout, and oras
// finds them there too); by digest, `DIR@sha256:...`, when its name would
// be longer than a tag may be.
//
// The bundle's manifest is an OCI artifact: the empty config and one layer,
// the Document (format.go): source registry, export time, scope, chain,
// sequence, the previous bundle's digest, the cursor (a position in the
// source's audit trail), every version with its digest, state, referrers
// and audit records, and totals. Its signature is written the way cosign
// writes an image signature in OCI 1.1 mode (a simple-signing payload
// naming the manifest's digest, the signature in the layer's annotation,
// subject: the manifest), made with the exporting registry's bundle key
// (bundles.signing_key) and checked on import against the keys trusted
// for bundles (a Verifier: attest's key ring, usage "bundles").
//
// Export (export.go) plans first and writes after: the copy engine of
// package mirror walks each version from this registry (mirror.Local) into
// a planning sink (plan.go) that records the manifests and the blobs they
// name without reading a blob, so the header (document, signature,
// index.json, totals, the archive's exact size) is known before the first
// byte is sent, and the archive streams from the registry with flat
// memory, manifests before blobs. A chain continues from a cursor
// (since.go): what the audit trail recorded after it (versions published,
// referrers pushed, lifecycle changes).
//
// Import (import.go) reads the archive as it streams (read.go): the
// header comes first and is judged before anything else is staged
// (trusted, next in its chain), then every blob is hashed into an
// unlinked spool file by its digest, never to a path the archive names
// (spool.go), then the content is held to the document (graph.go:
// nothing missing, nothing extra, sizes, totals, and index.json made
// again and compared byte for byte). Only then does the copy engine
// publish, from the staged bundle (source.go, a mirror.Source) into the
// registry: referrers before each manifest and the tag last, states after,
// and the import, its chain position and its audit records in one
// transaction. A version present with the same digest is skipped, one
// with another digest is reported as a conflict and left alone.
//
// Own code where a library falls short: the tar reader (tar.go) is
// packreg's, not archive/tar's, because a bundle is hostile input and
// archive/tar both reads more than a bundle may hold (links, devices,
// sparse files) and checks less than it must (the bytes between and
// after entries, the checksum field's form); the tar writer is
// archive/tar's. go-containerregistry's layout package writes the
// directory form (dir.go) but does not read a bundle: its reader trusts
// the layout it opens (paths, sizes), and it knows no sha512, so sha512
// blobs of the directory form are written here.
//
// bundle imports mirror (the engine, Local, filters), registry (actors,
// events' names), storage, the leaves, apierr and routes, sigstore's
// signature packages and go-containerregistry's layout; it must not
// import pack, attest, compliance or cmd (cmd plugs the pack service and
// the key ring in through LifecycleSetter and Verifier), and nothing but
// cmd imports it.
package bundle
