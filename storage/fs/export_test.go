package fs

// KeptFiles is how many upload data files s holds open between Appends.
func KeptFiles(s *Store) int { return s.kept.len() }

// RunningHashes is how many hashes of uploads s keeps behind Appends.
func RunningHashes(s *Store) int { return s.runs.len() }

// HoldHashes makes the hashes of s's Appends from now on (until the next
// HoldHashes) wait, once the state at their start is known, until release
// is called: the hash of a chunk then still runs when Append returns.
func HoldHashes(s *Store) (release func()) {
	c := make(chan struct{})
	s.holdHash = c
	return func() { close(c) }
}

// ChunksInUse is how many stream buffers are taken and not given back,
// in every store of the process.
func ChunksInUse() int64 { return chunksInUse.Load() }

// BuffersPerUpload bounds the buffers an upload's hash holds.
const BuffersPerUpload = inFlight
