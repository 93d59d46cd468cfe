package storage

import (
	"context"
	"errors"
	"time"
)

// RetryUnavailable calls f up to tries times while it fails with
// ErrUnavailable, waiting wait before the second call and twice as long
// before each next one. It is for a step that must not fail on a brief
// outage (a flapping connection, a 503 from an overloaded S3) but must
// still fail soon on one that lasts; f's own client retries are usually
// a few attempts within milliseconds. It returns f's last error, or that
// error as soon as ctx ends.
func RetryUnavailable(ctx context.Context, tries int, wait time.Duration, f func(context.Context) error) error {
	for try := 1; ; try++ {
		err := f(ctx)
		if !errors.Is(err, ErrUnavailable) || try >= tries {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait *= 2
	}
}
