package sqlite

// The statements Open gives sqlmeta, for tests that build a store with a
// shorter OptimizeEvery.
const (
	OptimizeStats  = optimizeStats
	OptimizeReload = optimizeReload
)
