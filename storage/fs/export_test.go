package fs

// KeptFiles is how many upload data files s holds open between Appends.
func KeptFiles(s *Store) int { return s.kept.len() }
