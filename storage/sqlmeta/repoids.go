package sqlmeta

import "sync"

// repoIDs remembers the ids of repositories whose rows this process saw
// committed, so that a write into one of them (every blob push links)
// skips the SELECT of its id: a statement fewer in the transaction, a
// round trip fewer on PostgreSQL.
//
// It is right for good because a repository's row is never deleted and
// its id never changes: a repository whose content is all gone keeps its
// row (RepositoryExists), and no statement deletes from repositories. A
// name and id are added only once the write that read or created the row
// has committed (remember): a row created in a transaction that rolled
// back never existed, and SQLite gives its id to the next repository
// created; a row read inside a group commit may be another write's,
// uncommitted until the batch commits.
type repoIDs struct {
	mu  sync.Mutex
	ids map[string]int64
}

// repoIDsMax bounds the map (names are up to 255 bytes): past it the map
// starts over, and the repositories written to since fill it again.
const repoIDsMax = 10000

func (c *repoIDs) get(name string) (int64, bool) {
	c.mu.Lock()
	id, ok := c.ids[name]
	c.mu.Unlock()
	return id, ok
}

// remember adds name's id after a write that read it (ensureRepo), when
// that write committed (err nil).
func (c *repoIDs) remember(err error, name string, id int64) error {
	if err != nil || id == 0 {
		return err
	}
	c.mu.Lock()
	if c.ids == nil || len(c.ids) >= repoIDsMax {
		c.ids = make(map[string]int64)
	}
	c.ids[name] = id
	c.mu.Unlock()
	return nil
}
