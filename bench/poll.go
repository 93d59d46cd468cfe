package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// errPending marks an error of poll's check as what it still awaits.
var errPending = errors.New("still waiting")

// pending is a check's answer "not yet", saying what it awaits.
func pending(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errPending, fmt.Sprintf(format, args...))
}

// poll calls check every interval until it returns nil (done) or an
// error other than pending (the outcome), ctx ends, or limit has passed:
// then the error is check's last, what it still awaited.
func poll(ctx context.Context, every, limit time.Duration, check func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if !errors.Is(err, errPending) {
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
