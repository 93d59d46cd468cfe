package storage_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
)

func TestRetryUnavailable(t *testing.T) {
	other := errors.New("access denied")
	for _, tc := range []struct {
		name      string
		errs      []error // f's answers, in order; nil after the list
		tries     int
		wantCalls int
		want      error
	}{
		{"first try succeeds", nil, 5, 1, nil},
		{"outage outlasted", []error{storage.ErrUnavailable, fmt.Errorf("put: %w", storage.ErrUnavailable)}, 5, 3, nil},
		{"other errors are final", []error{other}, 5, 1, other},
		{"not found is final", []error{storage.ErrNotFound}, 5, 1, storage.ErrNotFound},
		{"lasting outage gives up", []error{storage.ErrUnavailable, storage.ErrUnavailable, storage.ErrUnavailable}, 3, 3, storage.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := storage.RetryUnavailable(t.Context(), tc.tries, time.Millisecond, func(context.Context) error {
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			})
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if calls != tc.wantCalls {
				t.Errorf("%d calls, want %d", calls, tc.wantCalls)
			}
		})
	}
}

// A cancelled context ends the wait at once with f's last error.
func TestRetryUnavailableStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	err := storage.RetryUnavailable(ctx, 100, time.Hour, func(context.Context) error {
		calls++
		cancel()
		return storage.ErrUnavailable
	})
	if !errors.Is(err, storage.ErrUnavailable) || calls != 1 {
		t.Fatalf("err = %v after %d calls, want ErrUnavailable after 1", err, calls)
	}
}
