package main

import (
	"context"
	"fmt"
	"time"
)

// poll calls check every interval until it is done, ctx ends or limit has
// passed. check says either done (with err the outcome) or not yet (with
// err saying what is still awaited, returned should limit pass first).
func poll(ctx context.Context, every, limit time.Duration, check func() (done bool, err error)) error {
	deadline := time.Now().Add(limit)
	for {
		done, err := check()
		if done {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}
