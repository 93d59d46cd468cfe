package mirror

import (
	"context"
	"sync"
)

// flight runs one execution per key at a time and shares its outcome with
// every caller that asks meanwhile: a blob two versions share is sent
// once, a pull-through many clients wait for is fetched once.
type flight struct {
	mu    sync.Mutex
	calls map[string]*call
}

// call is one execution and its outcome.
type call struct {
	done chan struct{}
	val  any
	// copied is fn's report (the engine: whether it wrote the manifest).
	copied bool
	err    error
}

// do runs fn for key unless a call for key is running or kept, and waits
// for that one. keep says whether a finished call stays for later callers
// (true) or is forgotten, so the next caller runs fn again. first reports
// whether fn ran for this caller. A caller whose ctx ends stops waiting
// with ctx's error; the execution goes on for the others.
func (f *flight) do(ctx context.Context, key string, keep func(error) bool, fn func() (any, bool, error)) (c *call, first bool) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]*call{}
	}
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c, false
		case <-ctx.Done():
			return &call{err: ctx.Err()}, false
		}
	}
	c = &call{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()
	c.val, c.copied, c.err = fn()
	if !keep(c.err) {
		f.mu.Lock()
		delete(f.calls, key)
		f.mu.Unlock()
	}
	close(c.done)
	return c, true
}
