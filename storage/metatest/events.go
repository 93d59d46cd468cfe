package metatest

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
)

// ev is an event as the registry writes it.
func ev(action, target, body string) storage.Event {
	return storage.Event{At: time.Unix(1700000000, 123).UTC(), Actor: "anonymous@127.0.0.1:9", Action: action,
		Target: target, Digest: dg(body), Details: map[string]string{"size": fmt.Sprint(len(body))}}
}

// pending lists the events consumer has not acknowledged, as "action target".
func pending(t *testing.T, s storage.Store, consumer string) ([]storage.Event, []string) {
	t.Helper()
	evs, err := s.PendingEvents(ctx(t), consumer, 0)
	ok(t, err, "PendingEvents %s", consumer)
	var names []string
	for _, e := range evs {
		names = append(names, e.Action+" "+e.Target)
	}
	n, err := s.CountPendingEvents(ctx(t), consumer)
	ok(t, err, "CountPendingEvents %s", consumer)
	if n != int64(len(evs)) {
		t.Fatalf("CountPendingEvents(%s) = %d, PendingEvents lists %d", consumer, n, len(evs))
	}
	return evs, names
}

var eventCases = []testCase{
	{"ManyEventsOfOneWriteQueueInOrder", func(t *testing.T, s storage.Store) {
		// More events than one statement queues (sqlmeta: 4), for two
		// consumers and the audit trail: each gets every one, in order.
		ok(t, s.AddEventConsumer(ctx(t), "index"), "AddEventConsumer")
		ok(t, s.AddEventConsumer(ctx(t), "mirror"), "AddEventConsumer")
		tags := []string{"a", "b", "c", "d", "e"}
		evs := []storage.Event{ev("manifest.push", "r", "m1")}
		for _, tag := range tags {
			evs = append(evs, ev("tag.move", "r:"+tag, "m1"))
		}
		ok(t, s.PutManifest(ctx(t), manifest("r", "m1"), tags, storage.PutManifestOptions{Events: evs}), "PutManifest")
		want := "[manifest.push r tag.move r:a tag.move r:b tag.move r:c tag.move r:d tag.move r:e]"
		for _, c := range []string{"index", "mirror", storage.AuditConsumer} {
			got, names := pending(t, s, c)
			if fmt.Sprint(names) != want {
				t.Fatalf("pending for %s: %v, want %s", c, names, want)
			}
			for i := 1; i < len(got); i++ {
				if got[i].ID <= got[i-1].ID {
					t.Fatalf("%s: events out of order: %d after %d", c, got[i].ID, got[i-1].ID)
				}
			}
		}
	}},
	{"EventsCommitWithTheirChange", func(t *testing.T, s storage.Store) {
		ok(t, s.AddEventConsumer(ctx(t), "index"), "AddEventConsumer")
		ok(t, s.AddEventConsumer(ctx(t), "index"), "AddEventConsumer again")
		m := manifest("r", "m1")
		ok(t, s.LinkBlob(ctx(t), "r", dg("b"), 1, ev("blob.push", "r", "b")), "LinkBlob")
		ok(t, s.PutManifest(ctx(t), m, []string{"v1"},
			storage.PutManifestOptions{Events: []storage.Event{ev("manifest.push", "r", "m1"), ev("tag.move", "r:v1", "m1")}}), "PutManifest")
		// Changes that do not happen record nothing.
		is(t, s.DeleteTag(ctx(t), "r", "nope", storage.DeleteOptions{Events: []storage.Event{ev("tag.delete", "r:nope", "")}}), storage.ErrNotFound, "DeleteTag unknown")
		is(t, s.DeleteManifest(ctx(t), "r", dg("nope"), storage.DeleteOptions{Events: []storage.Event{ev("manifest.delete", "r", "nope")}}), storage.ErrNotFound, "DeleteManifest unknown")
		is(t, s.UnlinkBlob(ctx(t), "r", dg("nope"), ev("blob.delete", "r", "nope")), storage.ErrNotFound, "UnlinkBlob unknown")
		ok(t, s.DeleteTag(ctx(t), "r", "v1", storage.DeleteOptions{Events: []storage.Event{ev("tag.delete", "r:v1", "")}}), "DeleteTag")
		ok(t, s.DeleteManifest(ctx(t), "r", m.Digest, storage.DeleteOptions{Events: []storage.Event{ev("manifest.delete", "r", "m1")}}), "DeleteManifest")
		ok(t, s.UnlinkBlob(ctx(t), "r", dg("b"), ev("blob.delete", "r", "b")), "UnlinkBlob")
		want := "[blob.push r manifest.push r tag.move r:v1 tag.delete r:v1 manifest.delete r blob.delete r]"
		for _, c := range []string{"index", storage.AuditConsumer} {
			evs, names := pending(t, s, c)
			if fmt.Sprint(names) != want {
				t.Fatalf("pending for %s: %v, want %s", c, names, want)
			}
			first := evs[0]
			wantEv := ev("blob.push", "r", "b")
			if first.ID == 0 || !first.At.Equal(wantEv.At) || first.Actor != wantEv.Actor || first.Digest != wantEv.Digest ||
				!maps.Equal(first.Details, wantEv.Details) {
				t.Fatalf("event read back as %+v, want %+v", first, wantEv)
			}
			for i := 1; i < len(evs); i++ {
				if evs[i].ID <= evs[i-1].ID {
					t.Fatalf("events out of order: %d after %d", evs[i].ID, evs[i-1].ID)
				}
			}
		}
		// Acknowledging is per consumer.
		evs, _ := pending(t, s, "index")
		ok(t, s.AckEvents(ctx(t), "index", evs[0].ID, evs[2].ID, 1<<40), "AckEvents")
		if _, names := pending(t, s, "index"); fmt.Sprint(names) != "[manifest.push r tag.delete r:v1 manifest.delete r blob.delete r]" {
			t.Fatalf("after acknowledging two: %v", names)
		}
		if _, names := pending(t, s, storage.AuditConsumer); len(names) != 6 {
			t.Fatalf("another consumer's acknowledgement removed audit's events: %v", names)
		}
		// A consumer registered now sees only what comes next.
		ok(t, s.AddEventConsumer(ctx(t), "late"), "AddEventConsumer late")
		ok(t, s.LinkBlob(ctx(t), "r", dg("c"), 1, ev("blob.push", "r", "c")), "LinkBlob c")
		if _, names := pending(t, s, "late"); fmt.Sprint(names) != "[blob.push r]" {
			t.Fatalf("late consumer: %v", names)
		}
		if evs, _ := pending(t, s, "nobody"); len(evs) != 0 {
			t.Fatalf("unregistered consumer has events: %v", evs)
		}
		page, err := s.PendingEvents(ctx(t), storage.AuditConsumer, 2)
		ok(t, err, "PendingEvents page")
		if len(page) != 2 || page[0].Action != "blob.push" || page[1].Action != "manifest.push" {
			t.Fatalf("first page of 2: %+v", page)
		}
	}},
	{"EventsOfUploadsKeysAndMirrors", func(t *testing.T, s storage.Store) {
		ok(t, s.CreateUpload(ctx(t), upload("u", time.Now())), "CreateUpload")
		ok(t, s.FinishUpload(ctx(t), "u", "r/u", dg("x"), 1, ev("blob.push", "r/u", "x")), "FinishUpload")
		// Finished twice: the first finish recorded the push.
		ok(t, s.FinishUpload(ctx(t), "u", "r/u", dg("x"), 1, ev("blob.push", "r/u", "x")), "FinishUpload again")
		want := []string{"blob.push r/u"}
		k := &storage.Key{ID: "k1", Name: "k", PEM: "pem", Algorithm: "ed25519", State: storage.KeyActive, Created: time.Now(), Updated: time.Now()}
		ok(t, s.CreateKey(ctx(t), k, ev("key.add", "key:k1", "")), "CreateKey")
		is(t, s.CreateKey(ctx(t), k, ev("key.add", "key:k1", "")), storage.ErrConflict, "CreateKey twice")
		k.State = storage.KeyRevoked
		ok(t, s.UpdateKey(ctx(t), k, ev("key.revoke", "key:k1", "")), "UpdateKey")
		is(t, s.UpdateKey(ctx(t), &storage.Key{ID: "k2"}, ev("key.revoke", "key:k2", "")), storage.ErrNotFound, "UpdateKey unknown")
		want = append(want, "key.add key:k1", "key.revoke key:k1")
		m := testMirror("m1", storage.MirrorPush, "eu")
		ok(t, s.CreateMirror(ctx(t), m, ev("mirror.create", "mirror:eu", "")), "CreateMirror")
		is(t, s.CreateMirror(ctx(t), m, ev("mirror.create", "mirror:eu", "")), storage.ErrConflict, "CreateMirror twice")
		m.URL = "https://other.example"
		ok(t, s.UpdateMirror(ctx(t), m, ev("mirror.update", "mirror:eu", "")), "UpdateMirror")
		ok(t, s.DeleteMirror(ctx(t), "m1", ev("mirror.delete", "mirror:eu", "")), "DeleteMirror")
		is(t, s.DeleteMirror(ctx(t), "m1", ev("mirror.delete", "mirror:eu", "")), storage.ErrNotFound, "DeleteMirror twice")
		want = append(want, "mirror.create mirror:eu", "mirror.update mirror:eu", "mirror.delete mirror:eu")
		if _, names := pending(t, s, storage.AuditConsumer); fmt.Sprint(names) != fmt.Sprint(want) {
			t.Fatalf("pending: %v, want %v", names, want)
		}
	}},
	{"EventsOfAClaimedPut", func(t *testing.T, s storage.Store) {
		// Claims and events share PutManifest's transaction: a put refused
		// by a claim records nothing, and tells no listener.
		var calls atomic.Int64
		s.OnEvents(func(context.Context) { calls.Add(1) })
		a, b := manifest("r", "a"), manifest("r", "b")
		bind := []storage.TagClaim{{Tag: "1.0.0", Mode: storage.ClaimBind}}
		ok(t, s.PutManifest(ctx(t), a, []string{"1.0.0"}, storage.PutManifestOptions{Claims: bind,
			Events: []storage.Event{ev("manifest.push", "r", "a"), ev("tag.move", "r:1.0.0", "a")}}), "PutManifest a")
		err := s.PutManifest(ctx(t), b, []string{"1.0.0"}, storage.PutManifestOptions{Claims: bind,
			Events: []storage.Event{ev("manifest.push", "r", "b"), ev("tag.move", "r:1.0.0", "b")}})
		refusedBy(t, err, "1.0.0", a.Digest, "PutManifest b")
		evs, names := pending(t, s, storage.AuditConsumer)
		if fmt.Sprint(names) != "[manifest.push r tag.move r:1.0.0]" || evs[0].Digest != dg("a") {
			t.Fatalf("pending after a put and a refused one: %v", names)
		}
		if n := calls.Load(); n != 1 {
			t.Fatalf("%d listener calls, want 1 (the refused put committed nothing)", n)
		}
	}},
	{"EventListeners", func(t *testing.T, s storage.Store) {
		var calls atomic.Int64
		var last atomic.Value
		s.OnEvents(func(c context.Context) {
			calls.Add(1)
			// The change is committed when listeners hear of it.
			_, err := s.BlobSize(c, "r", dg(last.Load().(string)))
			if err != nil {
				t.Errorf("listener cannot read the change it hears of: %v", err)
			}
		})
		last.Store("quiet")
		ok(t, s.LinkBlob(ctx(t), "r", dg("quiet"), 1), "LinkBlob without events")
		if n := calls.Load(); n != 0 {
			t.Fatalf("%d listener calls for a write without events", n)
		}
		last.Store("b")
		ok(t, s.LinkBlob(ctx(t), "r", dg("b"), 1, ev("blob.push", "r", "b"), ev("blob.mount", "r", "b")), "LinkBlob")
		if n := calls.Load(); n != 1 {
			t.Fatalf("%d listener calls for one commit, want 1", n)
		}
		is(t, s.DeleteTag(ctx(t), "r", "nope", storage.DeleteOptions{Events: []storage.Event{ev("tag.delete", "r:nope", "")}}), storage.ErrNotFound, "DeleteTag unknown")
		if n := calls.Load(); n != 1 {
			t.Fatalf("a failed write called the listeners (%d calls)", n)
		}
	}},
	{"AuditEventsExactlyOnce", func(t *testing.T, s storage.Store) {
		const writers, each, drains = 4, 25, 4
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					body := fmt.Sprintf("w%d-%d", w, i)
					ok(t, s.LinkBlob(ctx(t), "r", dg(body), 1, ev("blob.push", "r", body)), "LinkBlob %s", body)
				}
			}()
		}
		// Drains run while the writers write, as replicas would.
		stop := make(chan struct{})
		var drained atomic.Int64
		var dwg sync.WaitGroup
		for range drains {
			dwg.Add(1)
			go func() {
				defer dwg.Done()
				for {
					// Only a drain that began after every writer had
					// returned proves, by finding nothing, that nothing is
					// left: one that began earlier may have run before the
					// last commits and answered 0 after them.
					var stopped bool
					select {
					case <-stop:
						stopped = true
					default:
					}
					n, err := s.AuditEvents(ctx(t), 7)
					ok(t, err, "AuditEvents")
					drained.Add(int64(n))
					if stopped && n == 0 {
						return
					}
				}
			}()
		}
		wg.Wait()
		close(stop)
		dwg.Wait()
		if got := drained.Load(); got != writers*each {
			t.Fatalf("drains recorded %d events, want %d", got, writers*each)
		}
		if evs, _ := pending(t, s, storage.AuditConsumer); len(evs) != 0 {
			t.Fatalf("%d events left pending", len(evs))
		}
		recs, err := s.ScanAudit(ctx(t), 0, 0)
		ok(t, err, "ScanAudit")
		seen := map[string]int{}
		for _, r := range recs {
			if r.Action != "blob.push" || r.Actor != "anonymous@127.0.0.1:9" || !r.At.Equal(time.Unix(1700000000, 123)) {
				t.Fatalf("record %+v", r)
			}
			seen[string(r.Digest)]++
		}
		if len(recs) != writers*each || len(seen) != writers*each {
			t.Fatalf("%d records of %d digests, want %d of each", len(recs), len(seen), writers*each)
		}
		verifies(t, s, true, 0)
	}},
}
