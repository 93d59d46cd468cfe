// Package blobtest is the conformance suite every storage.BlobStore backend
// runs unchanged, so the local-disk and S3 stores cannot drift apart:
//
//	func TestBlobStore(t *testing.T) {
//		blobtest.Run(t, func(t *testing.T) storage.BlobStore { return newStore(t) })
//	}
//
// It checks the contract in storage.go as a client sees it: byte-exact round
// trips, offsets, verification on Commit, resumable and replayable Appends
// (the upload state lives in storage.Upload, never in the store), Abort,
// Delete and concurrency. Backend-specific guarantees (crash safety of the
// files on disk, say) belong in the backend's own tests.
//
// blobtest imports only storage, digest and the standard library; only test
// code may import it.
package blobtest
