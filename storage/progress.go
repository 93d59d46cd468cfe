package storage

import (
	"context"
	"sync"
	"time"
)

// Progress lets the waiters of an outbox consumer (tests, and workers that
// must see another's work done first) learn that it acknowledged events,
// without polling the database in a tight loop. The zero value is ready.
type Progress struct {
	mu sync.Mutex
	ch chan struct{}
}

// Signal wakes every current waiter: call it after acknowledging events.
func (p *Progress) Signal() {
	p.mu.Lock()
	if p.ch != nil {
		close(p.ch)
	}
	p.ch = make(chan struct{})
	p.mu.Unlock()
}

func (p *Progress) changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch == nil {
		p.ch = make(chan struct{})
	}
	return p.ch
}

// Wait returns when consumer has no pending event in o, or ctx ends. It
// re-counts on each Signal, and every 50 ms for another replica's progress,
// which no Signal in this process reports.
func (p *Progress) Wait(ctx context.Context, o Outbox, consumer string) error {
	for {
		ch := p.changed()
		n, err := o.CountPendingEvents(ctx, consumer)
		if err != nil || n == 0 {
			return err
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
