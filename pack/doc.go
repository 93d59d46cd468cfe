// Package pack is the pack registry on top of the OCI registry: the pack
// model, publish and query, versions, lifecycle and pack policy, served as
// the REST API under /api/v1/packs.
//
// A pack is a repository; a pack version is a semver tag of it pointing at
// a manifest whose artifactType is application/vnd.packreg.pack.v1 (or
// whose config is application/vnd.packreg.pack.config.v1+json). Its files
// are the layers with an org.opencontainers.image.title annotation. Its
// description, labels and creation time come from the pack config blob
// ({"name","version","description","labels","created"}), or, with the empty
// config, from the annotations org.opencontainers.image.description,
// org.opencontainers.image.created and vnd.packreg.pack.labels (a JSON
// object), held to the rules of a REST publish (packconfig.go).
//
// The registry does not know packs. The Service plugs into it with
// RegistryOptions:
//
//   - IndexPush and IndexDelete (registry.Indexer) keep the pack index
//     (storage.Packs) inside the registry's own transactions: however a
//     pack version arrives (oras push, crane, REST publish) it is recorded
//     by the transaction that moves its version tag, and recorded as
//     deleted (never forgotten) by the one that deletes the tag or the
//     manifest or moves the tag to something else; a push of the same
//     content brings it back in the state it had. They read nothing: the
//     registry hands them the parsed manifest and the pack config
//     (registry.WithInlineConfig). No crash can separate a push from its
//     version.
//   - AdmitManifest, the admission hook, applies Policy to every push:
//     immutable versions, semver tags, pack size, file media types; and
//     ClaimTags (registry.TagClaimer) binds version tags to their digest in
//     the store's own transaction, so immutability holds across deletes
//     and against concurrent first pushes.
//   - CheckPull, the pull gate, serves deprecated versions with a Warning
//     header and refuses archived ones with 403 DENIED (a deleted version
//     by the state it had).
//
// REST publish pushes through the registry's service methods (Registry), so
// it passes the same validation, admission, index and events as an OCI
// client: the version is in the index when PushManifest returns, and the
// publish reads it back instead of indexing again.
// Its request is capped (WithMaxPublishSize) whatever the policy says; its
// files wait in memory up to 4 MiB per request, beyond that in one
// temporary file under the spool directory (WithSpoolDir), unlinked while
// open so that nothing outlives the request.
// Changes the package makes itself (publication, lifecycle) are written
// with their audit record in one transaction. Errors on the API have one
// shape (package apierr); the audit trail's API is in package audit.
//
// What a pack is made of (its artifact type, config and file media types,
// annotations), repository names and cosign's tags come from package oci;
// versions and their order from package semver.
//
// Files: model.go (types), manifest.go, policy.go
// (admission and pull gate), index.go (the index changes of a push or a
// delete) and packconfig.go (the
// facts a pushed pack brings), publish.go and upload.go (REST publish),
// lifecycle.go, query.go, handler.go (its rows of the route table).
//
// pack imports registry, storage, apierr and the leaves (oci, semver,
// digest); depcheck_test.go lists them. It must not import attest, mirror,
// compliance, cmd or a storage backend (it gets the storage.Packs role of
// the metadata store).
package pack
