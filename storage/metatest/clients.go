package metatest

import (
	"sync"
	"sync/atomic"
	"testing"
)

// FromClients runs op(0) to op(b.N-1) from that many goroutines, each
// taking the next index: the load of a store benchmark with concurrent
// writers, shared by the SQLite and PostgreSQL ones.
func FromClients(b *testing.B, clients int, op func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := op(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
