package auth

import (
	"sync"
	"time"
)

// Limiter counts failed logins per source and refuses a source that
// failed too often in a window, until the window since its first failure
// ends. Memory is bounded: past maxSources, expired sources are dropped
// first, then arbitrary ones.
type Limiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	sources map[string]*failures
}

type failures struct {
	n     int
	since time.Time
}

const maxSources = 10000

// NewLimiter allows max failures per source within window.
func NewLimiter(max int, window time.Duration, now func() time.Time) *Limiter {
	return &Limiter{max: max, window: window, now: now, sources: map[string]*failures{}}
}

// Blocked reports whether source is refused now, and for how long.
func (l *Limiter) Blocked(source string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.sources[source]
	if f == nil {
		return false, 0
	}
	left := f.since.Add(l.window).Sub(l.now())
	if left <= 0 {
		delete(l.sources, source)
		return false, 0
	}
	return f.n >= l.max, left
}

// Fail records a failed login of source and returns how many it has in
// the current window.
func (l *Limiter) Fail(source string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f := l.sources[source]
	if f == nil || !now.Before(f.since.Add(l.window)) {
		if len(l.sources) >= maxSources {
			l.evict(now)
		}
		f = &failures{since: now}
		l.sources[source] = f
	}
	f.n++
	return f.n
}

// Succeed forgets source's failures.
func (l *Limiter) Succeed(source string) {
	l.mu.Lock()
	delete(l.sources, source)
	l.mu.Unlock()
}

func (l *Limiter) evict(now time.Time) {
	for k, f := range l.sources {
		if !now.Before(f.since.Add(l.window)) {
			delete(l.sources, k)
		}
	}
	for k := range l.sources {
		if len(l.sources) < maxSources {
			break
		}
		delete(l.sources, k)
	}
}
