//go:build !unix

package sqlite

// Claim does nothing where flock(2) is missing: one server per database is
// then the operator's to keep.
func Claim(path string) (release func(), err error) { return func() {}, nil }
