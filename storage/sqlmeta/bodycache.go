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
// Correctness rests on a generation, not on knowing what a write
// touched: every commit bumps it (wrote), and so does every write counted
// in Store.writes (its count is part of the generation), both after the
// commit and before the writer is answered; an entry counts only while the
// generation it was read under is the current one. A read takes the
// generation before its query, so it saw every write bumped before; a
// write that commits meanwhile bumps after, which drops the entry. Any
// write empties the cache: pulls between pushes gain nothing, and lose
// only a comparison.
//
// The map holds one generation's entries; a put under a newer generation
// starts it over, one that would pass the byte budget too.
type bodyCache struct {
	bumps  atomic.Uint64
	writes *atomic.Int64 // Store.writes

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

func newBodyCache(budget int, writes *atomic.Int64) *bodyCache {
	if budget <= 0 {
		return nil
	}
	return &bodyCache{budget: budget, writes: writes, m: make(map[bodyKey]*storage.Manifest)}
}

// gen is the generation: both counts only grow, so their sum changes
// with either (a read that loads them apart takes a sum no later than the
// one at its query, which is all it needs).
func (c *bodyCache) gen() uint64 { return uint64(c.writes.Load()) + c.bumps.Load() }

// wrote is every write's bump, after its commit (whether it succeeded or
// not: a failed commit may yet have changed the database).
func (c *bodyCache) wrote() {
	if c != nil {
		c.bumps.Add(1)
	}
}

// get returns a copy of the entry for k (its Payload shared, never
// written), and the generation a read that misses must put under.
func (c *bodyCache) get(k bodyKey) (*storage.Manifest, uint64) {
	g := c.gen()
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
	if c.gen() != g {
		return
	}
	if c.at != g || c.bytes+n > c.budget {
		// A new map, not clear: clear costs the map's largest size, on
		// each of a busy registry's writes.
		c.m = make(map[bodyKey]*storage.Manifest)
		c.at, c.bytes = g, 0
	}
	c.m[k] = &cp
	c.bytes += n
}
