package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"
)

// NewHolder names a worker in a lease: host, pid and a random suffix, so
// a restarted process is another holder.
func NewHolder() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// HoldLease renews lease name for holder every ttl/3 until ctx ends. When
// a renewal fails or finds another holder, it calls lost and returns:
// another worker may be doing the same work now, so the caller stops.
func HoldLease(ctx context.Context, l Leases, name, holder string, ttl time.Duration, lost func(err error)) {
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := l.AcquireLease(ctx, name, holder, ttl)
		if ctx.Err() != nil {
			return
		}
		if err != nil || !ok {
			lost(err)
			return
		}
	}
}
