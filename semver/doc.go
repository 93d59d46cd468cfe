// Package semver is the version vocabulary of packs: SemVer 2.0.0 as an
// OCI tag can hold it (no leading "v", no "+build"), its precedence order,
// and the range language mirrors and upstreams select versions with.
//
// semver is a leaf: it imports the standard library only, and every
// package may import it (depcheck_test.go).
package semver
