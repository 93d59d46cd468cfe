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
