// Package mirror moves packs between registries and tells whether they
// match: push replication to mirrors, pull sync and pull-through from
// upstreams, parity reports, and the background worker that runs them.
//
// One copy engine (Engine, copy.go) works over a Source and a Sink, in the
// manner of regclient's scheme.API: Remote is any OCI registry over HTTP,
// Local is this packreg through the registry's service methods, and an OCI
// layout directory (offline bundles) will be a third implementation of the
// same two interfaces, so export and import reuse the engine unchanged.
// The engine copies manifests byte for byte (a digest never changes), walks
// the whole closure (index → manifests → blobs) and every referrer
// recursively (referrers API, its tag-schema index, and cosign's
// sha256-<hex>.sig/.att/.sbom tags), asks the sink before sending anything
// (HEAD, then cross-repository mount), streams blobs, retries transient
// failures with backoff, and moves a tag only once everything under it,
// referrers included, is on the sink. A second copy of the same content
// sends nothing, and the counts say so.
//
// Service (service.go) keeps mirrors and upstreams in the metadata
// store (its Store: the storage.Remotes, Runs, Parity and Leases roles):
// URL, credentials (stored, never logged, never shown), filters (name
// globs, semver range, lifecycle states; archived excluded unless asked
// for), schedule and concurrency. Worker (worker.go) runs their
// syncs and parity checks under a lease per remote, so one replica at a
// time works on a remote, and records every run with its progress; a run
// whose worker died is carried on by the next holder of the lease. API
// (api.go) serves /api/v1/mirrors, /api/v1/upstreams and /api/v1/parity;
// Client (client.go) is the same API for the CLI, over
// internal/restclient.
//
// Lifecycle is read through PackIndex, which the pack index satisfies, and
// travels to packreg mirrors through their REST lifecycle API
// (remoteapi.go: internal/restclient over the remote's own transport).
// Pull-through (Puller, fetch.go) is a registry.Fetcher: a pull that
// misses in an upstream's namespace copies the version in, then the
// registry serves it.
//
// Safety: remotes are hostile. Their responses are size-capped and
// time-limited, and the totals of a run are capped too (limits.go:
// listing pages and names, index and referrer depth, referrers and index
// entries per version, run time), failing with ErrLimit. The client dials
// through internal/netguard: addresses are judged at dial time (never
// link-local or metadata; never back to private after public, never
// https to http along redirects, token realms and upload Locations), and
// credentials go only where their netguard.Binding allows; they are
// stored bound to the origin and realms they were given for (service.go).
// URLs in errors lose their query. Nothing here deletes: an unreachable
// upstream leaves local content alone.
//
// The remote client (remote.go, remoteoci.go) is written here rather than
// taken from go-containerregistry's remote package, because that package
// falls short of these rules where no http.RoundTripper can help. Tried
// for issue 10 (v0.22.1 behind a RoundTripper keeping netguard's rules,
// the remote's scheme, the caps and the timeouts), it refused a token
// realm or an upload Location on a private address of another host:port
// before any request (an internal registry with its token service on
// another port, authRealms for it, uploads handed to another internal
// address: TestRealmCredentials, TestRemoteUploadLocationGuarded and
// TestMirrorHostileRemotes failed), rewrote the sink's tag-schema index on
// every PUT of a referrer in place of the engine's, guesses http for
// private hosts, and sent 152 requests where this client sends 106 to
// copy ten signed versions into a registry (a second HEAD and a PATCH per
// blob, a ping per repository), for 1.4 MB more binary.
//
// Descriptors are oci's (image-spec's), the tag schemas (cosign's tags,
// the referrers fallback tag) oci's one rule, and version ranges semver's.
//
// mirror imports registry, storage, apierr, restclient, netguard and the
// leaves (oci, semver, digest); depcheck_test.go lists them. It must not
// import pack, attest, compliance, cmd or a storage backend, and
// registry, pack and attest never import it.
package mirror
