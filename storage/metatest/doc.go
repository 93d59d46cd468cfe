// Package metatest is the shared test suite every storage.Metadata backend
// must pass unchanged (storage/sqlite, storage/postgres, and any later one):
//
//	func TestMetadata(t *testing.T) {
//		metatest.Run(t, func(t *testing.T) storage.Metadata { return openFresh(t) })
//	}
//
// Each case gets a fresh, empty store and asserts the storage.go contract
// from the outside: blob links and their isolation per repository,
// repository and tag pagination in byte order, byte-exact manifests,
// referrers, upload compare-and-swap, leases and concurrent writers.
//
// It imports only storage and the leaves digest and oci; never registry,
// pack, attest, mirror, compliance, cmd or a backend.
package metatest
