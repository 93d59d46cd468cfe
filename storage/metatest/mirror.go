package metatest

import (
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
)

func testMirror(id, kind, name string) *storage.Mirror {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &storage.Mirror{ID: id, Kind: kind, Name: name, URL: "http://127.0.0.1:5001",
		Spec: `{"include":["acme/*"]}`, Secret: `{"username":"u","password":"p"}`, Created: now, Updated: now}
}

var mirrorCases = []testCase{
	{"MirrorCRUD", func(t *testing.T, s storage.Store) {
		c := ctx(t)
		m := testMirror("m1", storage.MirrorPush, "eu")
		ok(t, s.CreateMirror(c, m), "CreateMirror")
		is(t, s.CreateMirror(c, testMirror("m1", storage.MirrorPush, "us")), storage.ErrConflict, "same id")
		is(t, s.CreateMirror(c, testMirror("m2", storage.MirrorPush, "eu")), storage.ErrConflict, "same name and kind")
		// Names are unique per kind only: an upstream may share a mirror's name.
		ok(t, s.CreateMirror(c, testMirror("u1", storage.MirrorPull, "eu")), "upstream named like a mirror")
		ok(t, s.CreateMirror(c, testMirror("m3", storage.MirrorPush, "ap")), "CreateMirror ap")

		got, err := s.GetMirror(c, "m1")
		ok(t, err, "GetMirror")
		if *got != *m {
			t.Fatalf("GetMirror:\n got  %+v\n want %+v", got, m)
		}
		_, err = s.GetMirror(c, "nope")
		is(t, err, storage.ErrNotFound, "GetMirror unknown")

		names := func(kind string) []string {
			l, err := s.ListMirrors(c, kind)
			ok(t, err, "ListMirrors %q", kind)
			var out []string
			for _, m := range l {
				out = append(out, m.Kind+"/"+m.Name)
			}
			return out
		}
		equal(t, names(storage.MirrorPush), []string{"mirror/ap", "mirror/eu"}, "mirrors")
		equal(t, names(storage.MirrorPull), []string{"upstream/eu"}, "upstreams")
		equal(t, names(""), []string{"mirror/ap", "mirror/eu", "upstream/eu"}, "all")

		m.Name, m.URL, m.Spec, m.Secret = "eu-west", "https://eu.example", `{}`, `{"token":"t"}`
		m.Updated = m.Updated.Add(time.Second)
		ok(t, s.UpdateMirror(c, m), "UpdateMirror")
		got, _ = s.GetMirror(c, "m1")
		if *got != *m {
			t.Fatalf("after UpdateMirror:\n got  %+v\n want %+v", got, m)
		}
		clash := *m
		clash.Name = "ap"
		is(t, s.UpdateMirror(c, &clash), storage.ErrConflict, "rename onto a taken name")
		gone := testMirror("nope", storage.MirrorPush, "x")
		is(t, s.UpdateMirror(c, gone), storage.ErrNotFound, "UpdateMirror unknown")

		ok(t, s.DeleteMirror(c, "m1"), "DeleteMirror")
		is(t, s.DeleteMirror(c, "m1"), storage.ErrNotFound, "DeleteMirror twice")
		equal(t, names(storage.MirrorPush), []string{"mirror/ap"}, "mirrors after delete")
	}},
	{"MirrorRuns", func(t *testing.T, s storage.Store) {
		c := ctx(t)
		ok(t, s.CreateMirror(c, testMirror("m1", storage.MirrorPush, "eu")), "CreateMirror")
		now := time.Now().UTC().Truncate(time.Millisecond)
		var ids []int64
		for i, kind := range []string{"sync", "parity", "sync"} {
			r := &storage.MirrorRun{MirrorID: "m1", Kind: kind, Trigger: "api", State: storage.RunRunning,
				Counts: "{}", Errors: "[]", Started: now.Add(time.Duration(i) * time.Second), Updated: now}
			ok(t, s.CreateMirrorRun(c, r), "CreateMirrorRun %d", i)
			if r.ID == 0 || len(ids) > 0 && r.ID <= ids[len(ids)-1] {
				t.Fatalf("run %d got ID %d after %v: want increasing IDs", i, r.ID, ids)
			}
			ids = append(ids, r.ID)
		}
		r, err := s.GetMirrorRun(c, ids[0])
		ok(t, err, "GetMirrorRun")
		if r.Kind != "sync" || r.State != storage.RunRunning || !r.Started.Equal(now) || !r.Finished.IsZero() {
			t.Fatalf("GetMirrorRun: %+v", r)
		}
		_, err = s.GetMirrorRun(c, ids[2]+100)
		is(t, err, storage.ErrNotFound, "GetMirrorRun unknown")

		r.State, r.Holder, r.Counts, r.Errors, r.Attempts = storage.RunSucceeded, "w1", `{"blobs":3}`, `["x"]`, 2
		r.Updated, r.Finished = now.Add(time.Minute), now.Add(time.Minute)
		ok(t, s.UpdateMirrorRun(c, r), "UpdateMirrorRun")
		got, _ := s.GetMirrorRun(c, r.ID)
		if *got != *r {
			t.Fatalf("after UpdateMirrorRun:\n got  %+v\n want %+v", got, r)
		}
		is(t, s.UpdateMirrorRun(c, &storage.MirrorRun{ID: ids[2] + 100}), storage.ErrNotFound, "UpdateMirrorRun unknown")

		list := func(kind string, before int64, n int) []int64 {
			l, err := s.ListMirrorRuns(c, "m1", kind, before, n)
			ok(t, err, "ListMirrorRuns")
			var out []int64
			for _, r := range l {
				out = append(out, r.ID)
			}
			return out
		}
		equal(t, list("", 0, 10), []int64{ids[2], ids[1], ids[0]}, "all runs, newest first")
		equal(t, list("sync", 0, 10), []int64{ids[2], ids[0]}, "sync runs")
		equal(t, list("", 0, 1), []int64{ids[2]}, "first page")
		equal(t, list("", ids[2], 10), []int64{ids[1], ids[0]}, "next page")

		running, err := s.RunningMirrorRuns(c, "m1")
		ok(t, err, "RunningMirrorRuns")
		if len(running) != 2 || running[0].ID != ids[1] || running[1].ID != ids[2] {
			t.Fatalf("RunningMirrorRuns: %+v, want runs %d and %d", running, ids[1], ids[2])
		}

		ok(t, s.DeleteMirror(c, "m1"), "DeleteMirror")
		_, err = s.GetMirrorRun(c, ids[0])
		is(t, err, storage.ErrNotFound, "run of a deleted mirror")
	}},
	{"ParityChecks", func(t *testing.T, s storage.Store) {
		c := ctx(t)
		ok(t, s.CreateMirror(c, testMirror("m1", storage.MirrorPush, "eu")), "CreateMirror")
		now := time.Now().UTC().Truncate(time.Millisecond)
		first := &storage.ParityCheck{MirrorID: "m1", InParity: true, Counts: `{"in_sync":1}`, Started: now, Finished: now}
		ok(t, s.PutParityCheck(c, first, []storage.ParityEntry{
			{Name: "acme/a", Version: "1.0.0", Status: "in_sync", PrimaryDigest: dg("a"), MirrorDigest: dg("a")},
		}), "PutParityCheck 1")
		entries := []storage.ParityEntry{
			{Name: "acme/b", Version: "1.0.0", Status: "missing", PrimaryDigest: dg("b")},
			{Name: "acme/a", Version: "2.0.0", Status: "out_of_sync", PrimaryDigest: dg("a2"), MirrorDigest: dg("a2'"), Detail: "digests differ"},
			{Name: "acme/a", Version: "1.0.0", Status: "in_sync", PrimaryDigest: dg("a"), MirrorDigest: dg("a")},
		}
		second := &storage.ParityCheck{MirrorID: "m1", Counts: `{"in_sync":1,"missing":1,"out_of_sync":1}`, Started: now, Finished: now.Add(time.Second)}
		ok(t, s.PutParityCheck(c, second, entries), "PutParityCheck 2")
		if second.ID <= first.ID || entries[0].CheckID != second.ID {
			t.Fatalf("check IDs %d then %d, entry check %d", first.ID, second.ID, entries[0].CheckID)
		}
		got, err := s.GetParityCheck(c, second.ID)
		ok(t, err, "GetParityCheck")
		if *got != *second {
			t.Fatalf("GetParityCheck:\n got  %+v\n want %+v", got, second)
		}
		if got, _ := s.GetParityCheck(c, first.ID); !got.InParity {
			t.Fatalf("first check lost InParity: %+v", got)
		}
		_, err = s.GetParityCheck(c, second.ID+100)
		is(t, err, storage.ErrNotFound, "GetParityCheck unknown")

		checks, err := s.ListParityChecks(c, "m1", 0, 10)
		ok(t, err, "ListParityChecks")
		if len(checks) != 2 || checks[0].ID != second.ID || checks[1].ID != first.ID {
			t.Fatalf("ListParityChecks: %+v", checks)
		}
		older, _ := s.ListParityChecks(c, "m1", second.ID, 10)
		if len(older) != 1 || older[0].ID != first.ID {
			t.Fatalf("ListParityChecks before %d: %+v", second.ID, older)
		}

		all, err := s.ParityEntries(c, second.ID, "")
		ok(t, err, "ParityEntries")
		var keys []string
		for _, e := range all {
			keys = append(keys, e.Name+":"+e.Version+"="+e.Status)
		}
		equal(t, keys, []string{"acme/a:1.0.0=in_sync", "acme/a:2.0.0=out_of_sync", "acme/b:1.0.0=missing"}, "entries by name and version")
		if all[1] != entries[1] {
			t.Fatalf("entry round trip:\n got  %+v\n want %+v", all[1], entries[1])
		}
		missing, _ := s.ParityEntries(c, second.ID, "missing")
		if len(missing) != 1 || missing[0].Name != "acme/b" {
			t.Fatalf("ParityEntries missing: %+v", missing)
		}

		ok(t, s.DeleteMirror(c, "m1"), "DeleteMirror")
		if l, _ := s.ParityEntries(c, second.ID, ""); len(l) != 0 {
			t.Fatalf("entries of a deleted mirror: %+v", l)
		}
		_, err = s.GetParityCheck(c, first.ID)
		is(t, err, storage.ErrNotFound, "check of a deleted mirror")
	}},
}
