package mirror_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/mirror"
	"github.com/packreg/packreg/storage"
)

// listFailsOnce fails the worker's first listing of push mirrors once
// armed, as a database that blinks does.
type listFailsOnce struct {
	mirror.Store
	armed atomic.Bool
}

func (l *listFailsOnce) ListMirrors(ctx context.Context, kind string) ([]*storage.Mirror, error) {
	if kind == storage.MirrorPush && l.armed.CompareAndSwap(true, false) {
		return nil, storage.ErrUnavailable
	}
	return l.Store.ListMirrors(ctx, kind)
}

// TestPublishSurvivesAFailedListing: a publication the worker could not
// turn into runs (the listing of mirrors failed) is turned into runs on
// a later pass. The worker used to forget it, and the mirror never got
// the version until a scheduled or manual sync.
func TestPublishSurvivesAFailedListing(t *testing.T) {
	var flaky *listFailsOnce
	a := newPrimaryOver(t, mirror.WorkerOptions{Tick: 50 * time.Millisecond, LeaseTTL: 2 * time.Second, Debounce: 10 * time.Millisecond},
		func(st mirror.Store) mirror.Store { flaky = &listFailsOnce{Store: st}; return flaky })
	b := newTestReg(t)
	var v mirror.View
	a.call(t, "POST", "/api/v1/mirrors", map[string]any{"name": "eu", "url": b.Srv.URL, "include": []string{"acme/**"}}, http.StatusCreated, &v)
	flaky.armed.Store(true)
	// One push, one event: nothing after it marks the pack again.
	pk := a.pack("acme/rules", "1.0.0", []byte("rules"))
	deadline := time.Now().Add(10 * time.Second)
	for b.resolve("acme/rules", "1.0.0") == "" {
		if time.Now().After(deadline) {
			t.Fatalf("the publication never reached the mirror (listing failed: %v)", !flaky.armed.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if flaky.armed.Load() {
		t.Fatal("the listing never failed")
	}
	var runs struct{ Items []mirror.RunView }
	a.call(t, "GET", "/api/v1/mirrors/"+v.ID+"/runs", nil, http.StatusOK, &runs)
	for _, r := range runs.Items {
		if r = a.waitRun(t, "mirror", v.ID, r.ID); r.Trigger != "publish" || r.State != storage.RunSucceeded {
			t.Fatalf("run %+v", r)
		}
	}
	if got := b.resolve("acme/rules", "1.0.0"); got != dg(pk) {
		t.Fatalf("the mirror holds %s, want %s", got, pk.Digest)
	}
}
