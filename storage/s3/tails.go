package s3

import (
	"slices"
	"strings"
	"sync"
)

// tailCache keeps a copy of the tail segments this Store staged lately,
// so that the Commit (or the part-filling Append) that follows on the
// same replica takes them from memory instead of a GetObject: a small
// push through a session cost one GET of the bytes it had just sent.
// An entry is the bytes S3 acknowledged under a key that is never
// written again (segment names carry a nonce) and the ETag it answered,
// so a hit is exactly what a GET would return; another replica, or an
// entry evicted, reads from S3 as before. Entries are taken once, and
// dropped when their upload is cleaned up or aborted here.
type tailCache struct {
	mu    sync.Mutex
	m     map[string]cachedTail
	order []string // keys in insertion order, for eviction; may hold taken ones
	size  int64
}

type cachedTail struct {
	etag string
	b    []byte
}

// The cache holds at most tailCacheBytes and tailCacheEntries, and no
// segment over maxCachedTail: a few concurrent small pushes, not big ones.
const (
	tailCacheBytes   = 4 << 20
	tailCacheEntries = 256
	maxCachedTail    = 1 << 20
)

// put remembers a copy of b, staged at key with etag.
func (c *tailCache) put(key, etag string, b []byte) {
	if len(b) > maxCachedTail || etag == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedTail{}
	}
	for len(c.order) > 0 && (c.size+int64(len(b)) > tailCacheBytes || len(c.m) >= tailCacheEntries) {
		c.remove(c.order[0])
		c.order = c.order[1:]
	}
	if len(c.order) >= 2*tailCacheEntries {
		// Mostly keys taken since: keep those still here, in order.
		c.order = slices.DeleteFunc(c.order, func(k string) bool { _, ok := c.m[k]; return !ok })
	}
	c.m[key] = cachedTail{etag: etag, b: append([]byte(nil), b...)}
	c.order = append(c.order, key)
	c.size += int64(len(b))
}

// take returns and forgets the bytes staged at key, if they are those
// with etag.
func (c *tailCache) take(key, etag string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || e.etag != etag {
		return nil, false
	}
	c.remove(key)
	return e.b, true
}

// drop forgets every segment under dir: its upload was published or
// aborted, and a later Commit of it must find what S3 has.
func (c *tailCache) drop(dir string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if strings.HasPrefix(k, dir) {
			c.remove(k)
		}
	}
	if len(c.m) == 0 {
		c.order = c.order[:0]
	}
}

func (c *tailCache) remove(key string) {
	if e, ok := c.m[key]; ok {
		c.size -= int64(len(e.b))
		delete(c.m, key)
	}
}
