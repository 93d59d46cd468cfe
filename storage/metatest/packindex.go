package metatest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// indexPut is the index change a push of v brings.
func indexPut(v *storage.PackVersion) storage.IndexChanges {
	return storage.IndexChanges{Puts: []storage.PackPut{{Version: v,
		Event: storage.Event{Actor: "alice", Action: "pack.publish", Target: v.Name + ":" + v.Version, Digest: v.Digest}}}}
}

// indexDelete is the index change a delete of name:version (or, with no
// version, of manifest d) brings.
func indexDelete(name, version, body, reason string) storage.IndexChanges {
	d := storage.PackDelete{Name: name, Version: version, Reason: reason,
		Event: storage.Event{Actor: "bob", Action: "pack.delete"}}
	if version == "" {
		d.Digest = dg(body)
	}
	return storage.IndexChanges{Deletes: []storage.PackDelete{d}}
}

func statusOf(t *testing.T, p storage.Packs, name, version string) string {
	t.Helper()
	v, err := p.GetPackVersion(ctx(t), name, version)
	if err != nil {
		return fmt.Sprint(err)
	}
	return v.Status
}

var packIndexCases = []testCase{
	{"IndexChangesCommitWithThePush", func(t *testing.T, s storage.Store) {
		p := s
		ok(t, s.AddEventConsumer(ctx(t), "index"), "AddEventConsumer")
		m := manifest("r", "a")
		v := packVersion("r", "1.0.0", "a")
		v.Digest = m.Digest
		ok(t, s.PutManifest(ctx(t), m, []string{"1.0.0"}, storage.PutManifestOptions{
			Events: []storage.Event{ev("manifest.push", "r", "a"), ev("tag.move", "r:1.0.0", "a")}, Index: indexPut(v)}), "PutManifest")
		if got := statusOf(t, p, "r", "1.0.0"); got != storage.PackActive {
			t.Fatalf("version after the push: %s", got)
		}
		// The publication is recorded after the push's own events.
		_, names := pending(t, s, "index")
		equal(t, names, []string{"manifest.push r", "tag.move r:1.0.0", "pack.publish r:1.0.0"}, "events of the push")
		// The same push again changes nothing in the index: no event.
		ok(t, s.PutManifest(ctx(t), m, []string{"1.0.0"}, storage.PutManifestOptions{Index: indexPut(v)}), "PutManifest again")
		_, names = pending(t, s, "index")
		equal(t, names, []string{"manifest.push r", "tag.move r:1.0.0", "pack.publish r:1.0.0"}, "events after the same push")
		// A push refused by a claim writes nothing to the index.
		other := manifest("r", "b")
		w := packVersion("r", "2.0.0", "b")
		w.Digest = other.Digest
		ok(t, s.PutManifest(ctx(t), m, []string{"2.0.0"}, storage.PutManifestOptions{
			Claims: []storage.TagClaim{{Tag: "2.0.0", Mode: storage.ClaimBind}}}), "claim 2.0.0")
		refusedBy(t, s.PutManifest(ctx(t), other, []string{"2.0.0"}, storage.PutManifestOptions{
			Claims: []storage.TagClaim{{Tag: "2.0.0", Mode: storage.ClaimBind}}, Index: indexPut(w)}), "2.0.0", m.Digest, "claimed")
		if got := statusOf(t, p, "r", "2.0.0"); got == storage.PackActive {
			t.Fatal("a push refused by its claim indexed its version")
		}
	}},
	{"IndexChangesCommitWithTheDelete", func(t *testing.T, s storage.Store) {
		p := s
		ok(t, s.AddEventConsumer(ctx(t), "index"), "AddEventConsumer")
		m := manifest("r", "a")
		put := func(tag string) {
			t.Helper()
			v := packVersion("r", tag, "a")
			v.Digest = m.Digest
			ok(t, s.PutManifest(ctx(t), m, []string{tag}, storage.PutManifestOptions{Index: indexPut(v)}), "PutManifest %s", tag)
		}
		put("1.0.0")
		put("1.1.0")
		put("1.2.0")
		ok(t, s.DeleteTag(ctx(t), "r", "1.0.0", storage.DeleteOptions{Index: indexDelete("r", "1.0.0", "", "tag deleted")}), "DeleteTag")
		if got := statusOf(t, p, "r", "1.0.0"); got != storage.PackDeleted {
			t.Fatalf("1.0.0 after its tag was deleted: %s", got)
		}
		hist, err := p.PackLifecycle(ctx(t), "r", "1.0.0")
		ok(t, err, "PackLifecycle")
		if last := hist[len(hist)-1]; last.From != storage.PackActive || last.To != storage.PackDeleted || last.Reason != "tag deleted" || last.Actor != "bob" {
			t.Fatalf("history of the delete: %+v", last)
		}
		// A delete that fails (no such tag) changes nothing.
		is(t, s.DeleteTag(ctx(t), "r", "9.9.9", storage.DeleteOptions{Index: indexDelete("r", "1.1.0", "", "wrong")}), storage.ErrNotFound, "DeleteTag unknown")
		if got := statusOf(t, p, "r", "1.1.0"); got != storage.PackActive {
			t.Fatalf("a failed delete moved 1.1.0 to %s", got)
		}
		// A manifest delete moves every version of its digest, once.
		ok(t, s.DeleteManifest(ctx(t), "r", m.Digest, storage.DeleteOptions{Index: indexDelete("r", "", "a", "manifest deleted")}), "DeleteManifest")
		for _, version := range []string{"1.0.0", "1.1.0", "1.2.0"} {
			if got := statusOf(t, p, "r", version); got != storage.PackDeleted {
				t.Fatalf("%s after its manifest was deleted: %s", version, got)
			}
		}
		evs, names := pending(t, s, "index")
		var deletes []string
		for i, n := range names {
			if evs[i].Action == "pack.delete" {
				deletes = append(deletes, n+" from="+evs[i].Details["from"]+" reason="+evs[i].Details["reason"])
				if evs[i].Digest != m.Digest || evs[i].Actor != "bob" {
					t.Fatalf("delete event %+v", evs[i])
				}
			}
		}
		equal(t, deletes, []string{
			"pack.delete r:1.0.0 from=active reason=tag deleted",
			"pack.delete r:1.1.0 from=active reason=manifest deleted",
			"pack.delete r:1.2.0 from=active reason=manifest deleted",
		}, "delete events")
		// Pushed again: restored in the state it had.
		put("1.1.0")
		if got := statusOf(t, p, "r", "1.1.0"); got != storage.PackActive {
			t.Fatalf("1.1.0 pushed again: %s", got)
		}
	}},
}

var tagWasCases = []testCase{
	{"TagWasMakesThePutConditional", func(t *testing.T, s storage.Store) {
		ok(t, s.AddEventConsumer(ctx(t), "index"), "AddEventConsumer")
		a, b, c := manifest("r", "a"), manifest("r", "b"), manifest("r", "c")
		was := func(d digest.Digest) storage.PutManifestOptions {
			return storage.PutManifestOptions{TagWas: []storage.TagState{{Tag: "t", Digest: d}},
				Events: []storage.Event{ev("tag.move", "r:t", "x")}}
		}
		moved := func(err error, want digest.Digest, what string) {
			t.Helper()
			var tm *storage.TagMovedError
			if !errors.As(err, &tm) || tm.Tag != "t" || tm.Want != want || !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("%s: %v, want a TagMovedError expecting %q", what, err, want)
			}
		}
		ok(t, s.PutManifest(ctx(t), a, []string{"t"}, was("")), "put a while t is free")
		moved(s.PutManifest(ctx(t), b, []string{"t"}, was("")), "", "put b expecting t free")
		moved(s.PutManifest(ctx(t), b, []string{"t"}, was(c.Digest)), c.Digest, "put b expecting c")
		if d, err := s.ResolveTag(ctx(t), "r", "t"); err != nil || d != a.Digest {
			t.Fatalf("t after refused puts: %s %v", d, err)
		}
		if _, err := s.GetManifest(ctx(t), "r", b.Digest); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a refused put stored its manifest: %v", err)
		}
		ok(t, s.PutManifest(ctx(t), b, []string{"t"}, was(a.Digest)), "put b expecting a")
		if d, _ := s.ResolveTag(ctx(t), "r", "t"); d != b.Digest {
			t.Fatalf("t after the put: %s", d)
		}
		// A deleted tag is not the tag it was.
		ok(t, s.DeleteTag(ctx(t), "r", "t", storage.DeleteOptions{}), "DeleteTag")
		moved(s.PutManifest(ctx(t), c, []string{"t"}, was(b.Digest)), b.Digest, "put c expecting b after the delete")
		_, names := pending(t, s, "index")
		equal(t, names, []string{"tag.move r:t", "tag.move r:t"}, "events: only the puts that happened")
	}},
}
