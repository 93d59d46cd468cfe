// Package metatest is the shared test suite every storage.Store backend
// must pass unchanged (storage/sqlite, storage/postgres, and any later one):
//
//	func TestMetadata(t *testing.T) {
//		metatest.Run(t, func(t *testing.T) storage.Store { return openFresh(t) })
//	}
//
// Each case gets a fresh, empty store and asserts the contract of every
// role of storage.Store from the outside: blob links and their isolation
// per repository, repository and tag pagination in byte order,
// byte-exact manifests, referrers, tag claims, upload compare-and-swap,
// leases, the outbox, pack versions, the audit chain, signature records,
// remotes, runs and parity, concurrent writers, and Ping when the backend
// has it.
//
// It imports only storage and the leaves digest and oci; never registry,
// pack, attest, mirror, compliance, cmd or a backend.
package metatest
