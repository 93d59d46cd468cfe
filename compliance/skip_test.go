package compliance

import (
	"context"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// Blob events are not queued for compliance: no verdict depends on a
// blob, and each would cost a repository's evaluation and a snapshot.
func TestBlobEventsAreNotQueuedForCompliance(t *testing.T) {
	f := newFixture(t, Config{})
	record := func(action string) {
		body := []byte(action)
		ev := storage.Event{Action: action, Target: "acme/rules", Digest: digest.FromBytes(digest.SHA256, body)}
		if err := f.st.LinkBlob(t.Context(), "acme/rules", ev.Digest, int64(len(body)), ev); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{"blob.push", "blob.mount", "blob.delete"} {
		record(a)
	}
	if n, err := f.st.CountPendingEvents(t.Context(), Consumer); err != nil || n != 0 {
		t.Fatalf("after blob events compliance has %d queued (%v), want 0", n, err)
	}
	record("manifest.push")
	if n, err := f.st.CountPendingEvents(t.Context(), Consumer); err != nil || n != 1 {
		t.Fatalf("after a manifest event compliance has %d queued (%v), want 1", n, err)
	}
}

// A push by tag queues its manifest's event for compliance, not the tag
// move that comes with it: the push has the repository evaluated.
func TestTagMovesAreNotQueuedForCompliance(t *testing.T) {
	f := newFixture(t, Config{})
	body := []byte("manifest")
	d := digest.FromBytes(digest.SHA256, body)
	m := &storage.Manifest{Repo: "acme/rules", Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: int64(len(body)), Payload: body, Created: time.Now().UTC()}
	evs := []storage.Event{{Action: "manifest.push", Target: "acme/rules", Digest: d},
		{Action: "tag.move", Target: "acme/rules:1.0.0", Digest: d}}
	if err := f.st.PutManifest(t.Context(), m, []string{"1.0.0"}, storage.PutManifestOptions{Events: evs}); err != nil {
		t.Fatal(err)
	}
	if n, err := f.st.CountPendingEvents(t.Context(), Consumer); err != nil || n != 1 {
		t.Fatalf("after a push by tag compliance has %d queued (%v), want 1: the push's", n, err)
	}
}

// A wake-up whose events were all skipped (or taken) leaves the worker
// waiting; one with events to evaluate, or a tick, starts a step.
func TestWakeWithNothingQueuedIsNoStep(t *testing.T) {
	f := newFixture(t, Config{})
	tick := make(chan time.Time)
	res := make(chan bool, 1)
	go func() { res <- f.svc.next(t.Context(), tick) }()
	body := []byte("layer")
	ev := storage.Event{Action: "blob.push", Target: "acme/rules", Digest: digest.FromBytes(digest.SHA256, body)}
	// Each commit wakes the worker (Subscribe); a blob's does not queue.
	for range 3 {
		if err := f.st.LinkBlob(t.Context(), "acme/rules", ev.Digest, int64(len(body)), ev); err != nil {
			t.Fatal(err)
		}
		// The wake-up channel holds one: once it is empty again, next
		// has taken this wake-up and looked at the queue.
		for deadline := time.Now().Add(10 * time.Second); len(f.svc.wakeup) > 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the worker stopped taking wake-ups: it left its wait on one with nothing queued")
			}
		}
	}
	select {
	case <-res:
		t.Fatal("the worker left its wait on wake-ups with nothing queued")
	default:
	}
	ev.Action = "manifest.push"
	if err := f.st.LinkBlob(t.Context(), "acme/rules", ev.Digest, int64(len(body)), ev); err != nil {
		t.Fatal(err)
	}
	stepStarted(t, res)
	if evs, err := f.st.PendingEvents(t.Context(), Consumer, 10); err != nil || len(evs) != 1 || evs[0].Action != "manifest.push" {
		t.Fatalf("queue %+v (%v)", evs, err)
	}
	// The manifest's wake-up may still be buffered: next can have seen its
	// event while looking at the queue after the last blob's wake-up, and
	// then a second next would return on it and never take the tick.
	// Wake-ups are sent before LinkBlob returns, so none comes after this.
	select {
	case <-f.svc.wakeup:
	default:
	}
	go func() { res <- f.svc.next(t.Context(), tick) }()
	select {
	case tick <- time.Now():
	case ok := <-res:
		t.Fatalf("next returned %v without a wake-up or a tick", ok)
	}
	if !<-res {
		t.Fatal("next on a tick = false")
	}
}

// A wake-up soon after a step waits for the settling time before it
// starts the next one, so that step takes every event committed
// meanwhile: a step per manifest PUT committed findings, an
// acknowledgement and a snapshot for each.
func TestWakeSoonAfterAStepSettles(t *testing.T) {
	f := newFixture(t, Config{})
	asked, release := make(chan time.Duration, 1), make(chan time.Time)
	f.svc.settle = storage.Settler{Window: time.Hour, After: func(d time.Duration) <-chan time.Time {
		select {
		case asked <- d:
		default:
		}
		return release
	}}
	f.svc.settle.Started()
	res := make(chan bool, 1)
	go func() { res <- f.svc.next(t.Context(), make(chan time.Time)) }()
	push := func(i int) {
		t.Helper()
		body := []byte{byte(i)}
		ev := storage.Event{Action: "manifest.push", Target: "acme/rules", Digest: digest.FromBytes(digest.SHA256, body)}
		if err := f.st.LinkBlob(t.Context(), "acme/rules", ev.Digest, 1, ev); err != nil {
			t.Fatal(err)
		}
	}
	push(0)
	select {
	case w := <-asked:
		if w <= 0 || w > time.Hour {
			t.Fatalf("settling for %s", w)
		}
	case <-res:
		t.Fatal("a wake-up right after a step started the next one at once")
	case <-time.After(10 * time.Second):
		t.Fatal("the wake-up was not taken")
	}
	for i := 1; i < 4; i++ {
		push(i)
	}
	select {
	case <-res:
		t.Fatal("next returned while settling")
	default:
	}
	release <- time.Now()
	select {
	case ok := <-res:
		if !ok {
			t.Fatal("next = false")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no step after settling")
	}
	if n, err := f.st.CountPendingEvents(t.Context(), Consumer); err != nil || n != 4 {
		t.Fatalf("%d events for the step (%v), want the 4 committed while settling", n, err)
	}
}

// countless is a store whose CountPendingEvents fails the test.
type countless struct {
	Store
	t *testing.T
}

func (c countless) CountPendingEvents(context.Context, string) (int64, error) {
	c.t.Error("the worker counted a queue: a count reads every row of it, and it only needs to know of one")
	return 0, nil
}

// The worker asks whether events wait (its own on a wake-up, attest's
// before a step), never how many: under load the queue is deep, and a
// count read all of it on every wake-up.
func TestWorkerNeverCountsTheQueue(t *testing.T) {
	f := newFixture(t, Config{})
	f.svc.after = "attest"
	if err := f.st.AddEventConsumer(t.Context(), "attest"); err != nil {
		t.Fatal(err)
	}
	f.svc.st = countless{f.svc.st, t}
	res := make(chan bool, 1)
	go func() { res <- f.svc.next(t.Context(), make(chan time.Time)) }()
	body := []byte("m")
	ev := storage.Event{Action: "manifest.push", Target: "acme/rules", Digest: digest.FromBytes(digest.SHA256, body)}
	if err := f.st.LinkBlob(t.Context(), "acme/rules", ev.Digest, 1, ev); err != nil {
		t.Fatal(err)
	}
	stepStarted(t, res)
	// attest has the event too: the step defers it.
	f.step()
	if evs, err := f.st.PendingEvents(t.Context(), Consumer, 10); err != nil || len(evs) != 1 {
		t.Fatalf("queue after a step while attest lags: %+v (%v), want the event deferred", evs, err)
	}
}

// stepStarted waits for next (its result on res) to start a step.
func stepStarted(t *testing.T, res <-chan bool) {
	t.Helper()
	select {
	case ok := <-res:
		if !ok {
			t.Fatal("next = false")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a wake-up with an event queued did not start a step")
	}
}
