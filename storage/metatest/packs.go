package metatest

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

func packVersion(name, version, body string) *storage.PackVersion {
	return &storage.PackVersion{
		Name: name, Version: version, Digest: dg(body),
		MediaType: oci.MediaTypeImageManifest, ArtifactType: oci.ArtifactTypePack,
		Size: int64(len(body)), TotalSize: int64(len(body)) + 10,
		Description: "the " + body + " pack",
		Files:       []storage.PackFile{{Name: body + ".yaml", Digest: dg(body + "-file"), Size: 10, MediaType: "text/yaml"}},
	}
}

func putPack(t *testing.T, p storage.Packs, v *storage.PackVersion) {
	t.Helper()
	if _, err := p.PutPackVersion(ctx(t), v, nil); err != nil {
		t.Fatalf("PutPackVersion %s:%s: %v", v.Name, v.Version, err)
	}
}

// versionsOf lists q and returns "name:version" of each, in order.
func versionsOf(t *testing.T, p storage.Packs, q storage.PackQuery) []string {
	t.Helper()
	vs, err := p.ListPackVersions(ctx(t), q)
	ok(t, err, "ListPackVersions %+v", q)
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Name + ":" + v.Version
	}
	return out
}

var packCases = []testCase{
	{"PackVersionRoundTrip", func(t *testing.T, s storage.Store) {
		v := packVersion("acme/rules", "1.2.0", "a")
		v.Labels = map[string]string{"team": "sec", "tier": "1"}
		rec := &storage.AuditRecord{Actor: "alice", Action: "pack.publish", Target: "acme/rules:1.2.0", Digest: v.Digest}
		changed, err := s.PutPackVersion(ctx(t), v, rec)
		ok(t, err, "PutPackVersion")
		if !changed || rec.ID != 1 {
			t.Fatalf("first put: changed %v, audit id %d; want true, 1", changed, rec.ID)
		}
		got, err := s.GetPackVersion(ctx(t), "acme/rules", "1.2.0")
		ok(t, err, "GetPackVersion")
		if got.Digest != v.Digest || got.Status != storage.PackActive || got.Description != v.Description ||
			got.Size != v.Size || got.TotalSize != v.TotalSize || got.ArtifactType != v.ArtifactType ||
			!maps.Equal(got.Labels, v.Labels) || !slices.Equal(got.Files, v.Files) || got.Created.IsZero() || got.ID == 0 {
			t.Fatalf("GetPackVersion = %+v, want %+v", got, v)
		}
		// The same digest again is not a change and adds no audit record.
		again := &storage.AuditRecord{Actor: "alice", Action: "pack.publish"}
		changed, err = s.PutPackVersion(ctx(t), packVersion("acme/rules", "1.2.0", "a"), again)
		ok(t, err, "PutPackVersion again")
		if changed || again.ID != 0 {
			t.Fatalf("same digest: changed %v, audit id %d; want false, 0", changed, again.ID)
		}
		hist, err := s.PackLifecycle(ctx(t), "acme/rules", "1.2.0")
		ok(t, err, "PackLifecycle")
		if len(hist) != 1 || hist[0].From != "" || hist[0].To != storage.PackActive || hist[0].Actor != "alice" {
			t.Fatalf("history after publish = %+v", hist)
		}
		_, err = s.GetPackVersion(ctx(t), "acme/rules", "1.2.1")
		is(t, err, storage.ErrNotFound, "unknown version")
		_, err = s.GetPackVersion(ctx(t), "acme/rule", "1.2.0")
		is(t, err, storage.ErrNotFound, "unknown pack")
	}},
	{"PackVersionReplaced", func(t *testing.T, s storage.Store) {
		v1 := packVersion("r", "1.0.0", "one")
		v1.Labels = map[string]string{"env": "prod"}
		putPack(t, s, v1)
		ok(t, s.ChangePackStatus(ctx(t), []storage.PackStatusChange{{Name: "r", Version: "1.0.0", From: storage.PackActive, To: storage.PackDeprecated, Reason: "old"}}, nil), "deprecate")
		v2 := packVersion("r", "1.0.0", "two")
		v2.Labels = map[string]string{"env": "dev"}
		rec := &storage.AuditRecord{Action: "pack.publish"}
		changed, err := s.PutPackVersion(ctx(t), v2, rec)
		ok(t, err, "replace")
		if !changed || rec.Details["previous"] != string(v1.Digest) {
			t.Fatalf("replace: changed %v, details %v", changed, rec.Details)
		}
		got, err := s.GetPackVersion(ctx(t), "r", "1.0.0")
		ok(t, err, "GetPackVersion")
		if got.Digest != v2.Digest || got.Status != storage.PackDeprecated || got.StatusReason != "old" || got.Labels["env"] != "dev" {
			t.Fatalf("after replace: %+v (content must be new, status kept)", got)
		}
		equal(t, versionsOf(t, s, storage.PackQuery{LabelKey: "env", LabelValue: "prod"}), []string{}, "old label")
		equal(t, versionsOf(t, s, storage.PackQuery{LabelKey: "env", LabelValue: "dev"}), []string{"r:1.0.0"}, "new label")
	}},
	{"PackListNewestFirstPaged", func(t *testing.T, s storage.Store) {
		var want []string
		for i := range 23 {
			name := []string{"a", "b/c", "d"}[i%3]
			v := packVersion(name, fmt.Sprintf("1.%d.0", i), fmt.Sprint("m", i))
			putPack(t, s, v)
			want = append(want, name+":"+v.Version)
		}
		slices.Reverse(want)
		var got []string
		q := storage.PackQuery{Limit: 5}
		for range 10 {
			vs, err := s.ListPackVersions(ctx(t), q)
			ok(t, err, "page after %+v", q)
			for _, v := range vs {
				got = append(got, v.Name+":"+v.Version)
			}
			if len(vs) < q.Limit {
				break
			}
			last := vs[len(vs)-1]
			q.BeforeCreated, q.BeforeID = last.Created, last.ID
		}
		equal(t, got, want, "all pages, newest first")
	}},
	{"PackListSameInstant", func(t *testing.T, s storage.Store) {
		// Versions recorded within one clock tick must still page without
		// loss or repeats: the ID breaks ties.
		var wg sync.WaitGroup
		for i := range 30 {
			wg.Go(func() { putPack(t, s, packVersion("r", fmt.Sprintf("0.0.%d", i), fmt.Sprint(i))) })
		}
		wg.Wait()
		all := versionsOf(t, s, storage.PackQuery{})
		var paged []string
		q := storage.PackQuery{Limit: 4}
		for {
			vs, err := s.ListPackVersions(ctx(t), q)
			ok(t, err, "page")
			for _, v := range vs {
				paged = append(paged, v.Name+":"+v.Version)
			}
			if len(vs) < q.Limit {
				break
			}
			q.BeforeCreated, q.BeforeID = vs[len(vs)-1].Created, vs[len(vs)-1].ID
		}
		if len(all) != 30 {
			t.Fatalf("listed %d versions, want 30", len(all))
		}
		equal(t, paged, all, "pages of 4 against one listing")
	}},
	{"PackListFilters", func(t *testing.T, s storage.Store) {
		for _, v := range []*storage.PackVersion{
			packVersion("acme/rules", "1.0.0", "r1"), packVersion("acme/rules", "2.0.0", "r2"),
			packVersion("acme/rulesets", "1.0.0", "rs1"), packVersion("acme-x", "1.0.0", "ax"),
			packVersion("other", "1.0.0", "r1"),
		} {
			if v.Name == "acme/rules" {
				v.Labels = map[string]string{"team": "sec"}
			}
			putPack(t, s, v)
		}
		ok(t, s.ChangePackStatus(ctx(t), []storage.PackStatusChange{{Name: "acme/rules", Version: "1.0.0", From: storage.PackActive, To: storage.PackArchived}}, nil), "archive")
		for _, c := range []struct {
			q    storage.PackQuery
			want []string
		}{
			{storage.PackQuery{Status: storage.PackActive}, []string{"other:1.0.0", "acme-x:1.0.0", "acme/rulesets:1.0.0", "acme/rules:2.0.0"}},
			{storage.PackQuery{Status: storage.PackArchived}, []string{"acme/rules:1.0.0"}},
			{storage.PackQuery{Status: storage.PackDeprecated}, []string{}},
			{storage.PackQuery{Name: "acme/rules"}, []string{"acme/rules:2.0.0", "acme/rules:1.0.0"}},
			{storage.PackQuery{NamePrefix: "acme/rules"}, []string{"acme/rulesets:1.0.0", "acme/rules:2.0.0", "acme/rules:1.0.0"}},
			{storage.PackQuery{NamePrefix: "acme/"}, []string{"acme/rulesets:1.0.0", "acme/rules:2.0.0", "acme/rules:1.0.0"}},
			{storage.PackQuery{NamePrefix: "acme", Status: storage.PackActive}, []string{"acme-x:1.0.0", "acme/rulesets:1.0.0", "acme/rules:2.0.0"}},
			{storage.PackQuery{Name: "acme/rules", Digest: dg("r1")}, []string{"acme/rules:1.0.0"}},
			{storage.PackQuery{LabelKey: "team", LabelValue: "sec"}, []string{"acme/rules:2.0.0", "acme/rules:1.0.0"}},
			{storage.PackQuery{LabelKey: "team", LabelValue: "sec", Status: storage.PackActive}, []string{"acme/rules:2.0.0"}},
			{storage.PackQuery{LabelKey: "team", LabelValue: "SEC"}, []string{}},
			{storage.PackQuery{Limit: 2}, []string{"other:1.0.0", "acme-x:1.0.0"}},
		} {
			got := versionsOf(t, s, c.q)
			equal(t, got, c.want, fmt.Sprintf("ListPackVersions %+v", c.q))
		}
	}},
	{"PackStatusCompareAndSwap", func(t *testing.T, s storage.Store) {
		putPack(t, s, packVersion("r", "1.0.0", "a"))
		putPack(t, s, packVersion("r", "2.0.0", "b"))
		dep := func(version, from string) storage.PackStatusChange {
			return storage.PackStatusChange{Name: "r", Version: version, From: from, To: storage.PackDeprecated, Reason: "use 3", Actor: "bob"}
		}
		rec := &storage.AuditRecord{Action: "pack.lifecycle", Target: "r:1.0.0"}
		ok(t, s.ChangePackStatus(ctx(t), []storage.PackStatusChange{dep("1.0.0", storage.PackActive)}, []*storage.AuditRecord{rec}), "deprecate")
		if rec.ID == 0 || rec.Hash == "" {
			t.Fatalf("audit record not appended: %+v", rec)
		}
		is(t, s.ChangePackStatus(ctx(t), []storage.PackStatusChange{dep("1.0.0", storage.PackActive)}, nil), storage.ErrConflict, "stale From")
		is(t, s.ChangePackStatus(ctx(t), []storage.PackStatusChange{dep("9.9.9", storage.PackActive)}, nil), storage.ErrNotFound, "unknown version")
		// All or nothing: 2.0.0 could change, 1.0.0 cannot, so neither does,
		// and the audit record of the failed change is not appended.
		head, err := s.AuditHead(ctx(t))
		ok(t, err, "AuditHead")
		failed := &storage.AuditRecord{Action: "pack.lifecycle"}
		err = s.ChangePackStatus(ctx(t), []storage.PackStatusChange{dep("2.0.0", storage.PackActive), dep("1.0.0", storage.PackActive)}, []*storage.AuditRecord{failed})
		is(t, err, storage.ErrConflict, "one stale change among two")
		v2, err := s.GetPackVersion(ctx(t), "r", "2.0.0")
		ok(t, err, "GetPackVersion")
		if v2.Status != storage.PackActive {
			t.Fatalf("2.0.0 is %s after a failed batch, want active", v2.Status)
		}
		if after, _ := s.AuditHead(ctx(t)); after != head {
			t.Fatalf("failed change moved the audit head from %+v to %+v", head, after)
		}
		v1, err := s.GetPackVersion(ctx(t), "r", "1.0.0")
		ok(t, err, "GetPackVersion")
		if v1.Status != storage.PackDeprecated || v1.StatusReason != "use 3" {
			t.Fatalf("1.0.0 = %s %q", v1.Status, v1.StatusReason)
		}
		hist, err := s.PackLifecycle(ctx(t), "r", "")
		ok(t, err, "PackLifecycle of the pack")
		var steps []string
		for _, h := range hist {
			steps = append(steps, h.Version+":"+h.From+">"+h.To)
		}
		equal(t, steps, []string{"1.0.0:>active", "2.0.0:>active", "1.0.0:active>deprecated"}, "history")
		if hist[2].Actor != "bob" || hist[2].Reason != "use 3" || hist[2].At.IsZero() {
			t.Fatalf("history entry %+v", hist[2])
		}
	}},
	{"PackDeletedIsRestoredByContent", func(t *testing.T, s storage.Store) {
		// A version recorded as deleted keeps its record; putting it again
		// brings back the state it had, with that state's reason.
		v := packVersion("r", "1.0.0", "a")
		v.Labels = map[string]string{"k": "v"}
		putPack(t, s, v)
		change := func(from, to, reason string) {
			t.Helper()
			ok(t, s.ChangePackStatus(ctx(t), []storage.PackStatusChange{{Name: "r", Version: "1.0.0", From: from, To: to, Reason: reason}}, nil),
				"%s → %s", from, to)
		}
		change(storage.PackActive, storage.PackArchived, "withdrawn")
		change(storage.PackArchived, storage.PackDeleted, "tag deleted")
		equal(t, versionsOf(t, s, storage.PackQuery{Status: storage.PackDeleted}), []string{"r:1.0.0"}, "deleted versions")
		equal(t, versionsOf(t, s, storage.PackQuery{LabelKey: "k", LabelValue: "v"}), []string{"r:1.0.0"}, "labels of a deleted version")
		rec := &storage.AuditRecord{Actor: "carol", Action: "pack.publish", Target: "r:1.0.0", Digest: v.Digest}
		changed, err := s.PutPackVersion(ctx(t), packVersion("r", "1.0.0", "a"), rec)
		ok(t, err, "put again")
		if !changed || rec.ID == 0 || rec.Details["restored"] != storage.PackArchived || rec.Details["previous"] != "" {
			t.Fatalf("restore: changed %v, record %+v", changed, rec)
		}
		got, err := s.GetPackVersion(ctx(t), "r", "1.0.0")
		ok(t, err, "GetPackVersion")
		if got.Status != storage.PackArchived || got.StatusReason != "withdrawn" {
			t.Fatalf("restored as %s %q, want archived \"withdrawn\"", got.Status, got.StatusReason)
		}
		hist, err := s.PackLifecycle(ctx(t), "r", "1.0.0")
		ok(t, err, "PackLifecycle")
		var steps []string
		for _, h := range hist {
			steps = append(steps, h.From+">"+h.To)
		}
		equal(t, steps, []string{">active", "active>archived", "archived>deleted", "deleted>archived"}, "history")
		if hist[3].Actor != "carol" {
			t.Fatalf("restore history entry %+v", hist[3])
		}
		if changed, err := s.PutPackVersion(ctx(t), packVersion("r", "1.0.0", "a"), nil); err != nil || changed {
			t.Fatalf("a second put changed %v (%v)", changed, err)
		}
		// Deleted and put with other content (mutable versions): replaced
		// and restored at once.
		change(storage.PackArchived, storage.PackDeleted, "manifest deleted")
		rec = &storage.AuditRecord{Action: "pack.publish", Target: "r:1.0.0"}
		changed, err = s.PutPackVersion(ctx(t), packVersion("r", "1.0.0", "b"), rec)
		ok(t, err, "put other content")
		got, _ = s.GetPackVersion(ctx(t), "r", "1.0.0")
		if !changed || got.Digest != dg("b") || got.Status != storage.PackArchived || rec.Details["previous"] != string(dg("a")) {
			t.Fatalf("other content after a delete: %+v, record %+v", got, rec)
		}
		// Never recorded before a delete: restored as active.
		putPack(t, s, packVersion("r", "2.0.0", "c"))
		ok(t, s.ChangePackStatus(ctx(t), []storage.PackStatusChange{{Name: "r", Version: "2.0.0", From: storage.PackActive, To: storage.PackDeleted}}, nil), "delete 2.0.0")
		putPack(t, s, packVersion("r", "2.0.0", "c"))
		if got, _ := s.GetPackVersion(ctx(t), "r", "2.0.0"); got.Status != storage.PackActive || got.StatusReason != "" {
			t.Fatalf("2.0.0 restored as %s %q", got.Status, got.StatusReason)
		}
	}},
	{"PackConcurrentPuts", func(t *testing.T, s storage.Store) {
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			changes int
		)
		for range 8 {
			wg.Go(func() {
				changed, err := s.PutPackVersion(ctx(t), packVersion("r", "1.0.0", "same"), &storage.AuditRecord{Action: "pack.publish"})
				if err != nil {
					t.Errorf("PutPackVersion: %v", err)
				}
				mu.Lock()
				defer mu.Unlock()
				if changed {
					changes++
				}
			})
		}
		wg.Wait()
		if changes != 1 {
			t.Fatalf("%d of 8 identical concurrent puts reported a change, want 1", changes)
		}
		head, err := s.AuditHead(ctx(t))
		ok(t, err, "AuditHead")
		if head.ID != 1 {
			t.Fatalf("audit head %d after one change, want 1", head.ID)
		}
	}},
	{"PackTimesAreUTC", func(t *testing.T, s storage.Store) {
		before := time.Now()
		putPack(t, s, packVersion("r", "1.0.0", "a"))
		v, err := s.GetPackVersion(ctx(t), "r", "1.0.0")
		ok(t, err, "GetPackVersion")
		if v.Created.Before(before.Add(-time.Minute)) || v.Created.After(time.Now().Add(time.Minute)) || v.Created.Location() != time.UTC {
			t.Fatalf("Created %v, recorded at about %v", v.Created, before)
		}
	}},
}
