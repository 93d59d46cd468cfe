package bundle

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/storage"
)

// TestImportDuringShutdown: a bundle whose receive ends after Run's
// context ended (the server drains its requests after telling background
// work to stop) is not published on a goroutine Run no longer waits for,
// over stores about to be closed: the import fails at once, retryable,
// and its record says so.
func TestImportDuringShutdown(t *testing.T) {
	b, sg := smallBundle(t)
	c := newSite(t)
	c.trust(sg, "bundles")
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); c.svc.Run(ctx) }()
	cancel()
	<-ran
	rep, err := c.svc.Import(c.ctx(), bytes.NewReader(b), ImportOptions{Actor: "tester"})
	if !errors.Is(err, storage.ErrUnavailable) || rep != nil {
		t.Fatalf("import after Run stopped: %+v, %v; want ErrUnavailable", rep, err)
	}
	c.svc.Wait()
	reps, err := c.svc.List(context.Background(), time.Time{}, 10)
	if err != nil || len(reps) != 1 || reps[0].State != storage.ImportFailed || reps[0].Error == nil || reps[0].Error.Code != apierr.Unavailable {
		t.Fatalf("recorded imports: %v %+v", err, reps)
	}
	if repos := c.repos(); len(repos) != 0 {
		t.Fatalf("published after Run stopped: %v", repos)
	}
	c.spoolEmpty()
}
