// Package oci is packreg's vocabulary of OCI objects, in the spirit of
// regclient's types/: pure data and grammars, no I/O. It owns
//
//   - the shapes: Descriptor, Manifest and Index are image-spec's
//     (github.com/opencontainers/image-spec/specs-go/v1), used as they are;
//     Document is the one packreg type beside them, the manifest-or-index
//     union a registry validates (types.go says why image-spec's cannot);
//     ReferrersIndex builds the index the referrers API answers;
//   - media types and annotations (mediatype.go): OCI and Docker manifests,
//     cosign, DSSE, in-toto, sigstore bundles and packreg packs, and the
//     predicates over them (IsIndex, IsPack, NonDistributable...);
//   - the repository-name and tag grammars of the distribution spec
//     (names.go), checked by hand with the length first, so no regexp ever
//     runs on hostile input;
//   - the tag schemas (tags.go): cosign's <alg>-<hex>.sig/.att/.sbom, with
//     one parser, and the referrers API's fallback tag <alg>-<hex>;
//   - the distribution spec's error codes as sentinel errors (errors.go):
//     each Kind carries its code and HTTP status, the one table from
//     errors to answers that both HTTP edges read, and Errorf wraps one
//     with the message a client reads.
//
// Image-spec names a digest with go-digest's type; packreg's stores and
// APIs take digest.Digest. NewDescriptor converts one way; the other way is
// a plain conversion, digest.Digest(desc.Digest), which validates nothing:
// a descriptor read from outside is checked with digest.Parse first.
//
// oci is a leaf: it imports digest, image-spec and go-digest, nothing else
// from packreg or outside the standard library, and every package may
// import it (depcheck_test.go). conformance keeps its own small copies on
// purpose: it tests packreg over the wire and imports nothing internal.
package oci
