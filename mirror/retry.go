package mirror

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"github.com/packreg/packreg/internal/netguard"
	"github.com/packreg/packreg/storage"
)

// Retry says how transient failures (a dropped connection, a 5xx, a 429, a
// timed-out request) are retried: up to Attempts tries in all, waiting
// Base, 2·Base, 4·Base... (at most Max, with jitter) in between.
type Retry struct {
	Attempts int
	Base     time.Duration
	Max      time.Duration
}

// DefaultRetry rides out a registry restart of a few seconds.
var DefaultRetry = Retry{Attempts: 5, Base: 250 * time.Millisecond, Max: 4 * time.Second}

// do runs fn until it succeeds, fails for good, or the attempts run out.
func (p Retry) do(ctx context.Context, fn func() error) error {
	attempts := max(p.Attempts, 1)
	wait := p.Base
	for i := 1; ; i++ {
		err := fn()
		if err == nil || i >= attempts || ctx.Err() != nil || !transient(err) {
			return err
		}
		if errors.Is(err, errRetryAuth) {
			continue // the token is there now; no reason to wait
		}
		d := wait/2 + rand.N(wait/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(wait*2, p.Max)
	}
}

// transient reports whether err may go away by itself. The caller has
// checked that its own context is alive, so a deadline or cancellation
// here belongs to one request (its timeout, a stalled stream).
func transient(err error) bool {
	var he *HTTPError
	var ne net.Error
	switch {
	case errors.Is(err, errRetryAuth):
		return true
	case errors.As(err, &he):
		return he.Temporary()
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrNotFound), errors.Is(err, ErrDenied),
		errors.Is(err, ErrLimit), errors.Is(err, netguard.ErrRefused):
		return false // before net.Error: a refused dial comes as a *url.Error
	case errors.Is(err, storage.ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.As(err, &ne):
		return true
	}
	return false
}
