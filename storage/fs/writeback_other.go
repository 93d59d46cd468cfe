//go:build !linux || arm

package fs

// startWriteback is a no-op where sync_file_range is unavailable; the fsync
// at the end of Append then does all the writing.
func startWriteback(File, int64, int64) {}
