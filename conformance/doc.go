// Package conformance tests packreg from the outside, the way its users do.
//
// Its tests build cmd/packreg into a temporary binary, start it on a free
// loopback port with a temporary data directory, and then drive it over the
// wire: the OCI distribution-spec conformance suite (under OCI_VERSION=1.1
// and dev, with every API and data set on), the real clients (crane, oras,
// regctl, skopeo, helm, cosign at the versions .ci/tools.sh pins), a kill -9
// in the middle of a chunked upload, graceful shutdown, and, when
// PACKREG_TEST_S3 and PACKREG_TEST_POSTGRES are set, the same suite on S3 and
// PostgreSQL plus two replicas serving one registry. Outage tests break a
// backend under a running server: PostgreSQL restarted (a throwaway cluster
// the test starts itself, never the shared one) and S3 behind the
// fault-injecting proxy (storage/s3/s3fault/cmd/s3fault, built and run as a
// process); every answer must be a success or a clean 503, and everything
// acknowledged must be served afterwards. The upload janitor's purge of S3
// leftovers is checked the same way.
//
// A missing tool skips its test, unless the CI environment variable is set:
// then it fails, so CI can never pass by skipping.
//
// The package must import nothing from packreg (TestNoInternalImports keeps
// it so): what it proves holds for the binary, not for the code's own view of
// itself. Conformance reports are kept under conformance/results/ (ignored by
// git).
package conformance
