package sqlmeta

import (
	"sync"
	"sync/atomic"

	"github.com/packreg/packreg/storage"
)

// bodyCache keeps what GetManifestBody read, by repository and tag or
// digest, for a store whose every write goes through it (Options.BodyCache:
// SQLite, one process). On SQLite the read was a third of a pull's CPU,
// half of it the WAL's shared-memory locks.
//
// Correctness rests on one generation counter, not on knowing what a write
// touched: every write bumps it after its commit (wrote), before the
// writer is answered; an entry counts only while the generation it was read
// under is the current one. A read takes the generation before its query,
// so it saw every write bumped before; a write that commits meanwhile bumps
// after, which drops the entry. Any write empties the cache: pulls between
// pushes gain nothing, and lose only a comparison.
//
// The map holds one generation's entries; a put under a newer generation
// starts it over, one that would pass the byte budget too.
type bodyCache struct {
	gen atomic.Uint64

	mu     sync.RWMutex
	at     uint64 // the generation of every entry in m
	m      map[bodyKey]*storage.Manifest
	bytes  int
	budget int
}

type bodyKey struct{ repo, tag, digest string }

// bodyMax is the largest payload kept: image manifests are a few KiB, and
// the budget should hold many.
const bodyMax = 64 << 10

func newBodyCache(budget int) *bodyCache {
	if budget <= 0 {
		return nil
	}
	return &bodyCache{budget: budget, m: make(map[bodyKey]*storage.Manifest)}
}

// wrote is every write's bump, after its commit (whether it succeeded or
// not: a failed commit may yet have changed the database).
func (c *bodyCache) wrote() {
	if c != nil {
		c.gen.Add(1)
	}
}

// get returns a copy of the entry for k (its Payload shared, never
// written), and the generation a read that misses must put under.
func (c *bodyCache) get(k bodyKey) (*storage.Manifest, uint64) {
	g := c.gen.Load()
	c.mu.RLock()
	m := c.m[k]
	ok := m != nil && c.at == g
	c.mu.RUnlock()
	if !ok {
		return nil, g
	}
	cp := *m
	return &cp, g
}

// put keeps m, read under generation g, unless a write came since.
func (c *bodyCache) put(k bodyKey, g uint64, m *storage.Manifest) {
	n := len(m.Payload) + len(k.repo) + len(k.tag) + len(k.digest) + len(m.MediaType) + len(m.Digest)
	if len(m.Payload) > bodyMax {
		return
	}
	cp := *m
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != g {
		return
	}
	if c.at != g || c.bytes+n > c.budget {
		clear(c.m)
		c.at, c.bytes = g, 0
	}
	c.m[k] = &cp
	c.bytes += n
}
