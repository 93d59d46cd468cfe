package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/audit"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/sqlite"
	"github.com/packreg/packreg/storage/sqlmeta"
)

func open(t *testing.T) *sqlmeta.Store {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func get[T any](t *testing.T, h http.Handler, path string) (T, *httptest.ResponseRecorder) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	var v T
	if w.Code == http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, w.Body)
		}
	}
	return v, w
}

func TestRecorderAndQueries(t *testing.T) {
	s := open(t)
	rec := audit.NewRecorder(s, slog.New(slog.DiscardHandler))
	rec.Watch()
	ctx := t.Context()
	d := digest.FromBytes(digest.SHA256, []byte("m"))
	start := time.Now().UTC()
	for i := range 30 {
		// An event as the registry records it with its change.
		e := registry.Event{Action: registry.ActionTagMove, Repo: fmt.Sprint("repo", i%3), Tag: "1.0.0",
			Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 10, Actor: "anonymous@10.0.0.1:5", At: time.Now()}
		if err := s.LinkBlob(ctx, e.Repo, d, 10, e.Record()); err != nil {
			t.Fatal(err)
		}
	}
	h := audit.Handler(s, slog.New(slog.DiscardHandler))
	first, _ := get[audit.List](t, h, "/api/v1/audit?limit=1")
	r := first.Items[0]
	if r.ID != 30 || r.Target != "repo2:1.0.0" || r.Action != "tag.move" || r.Actor != "anonymous@10.0.0.1:5" ||
		r.Digest != string(d) || r.Details["size"] != "10" || r.Details["mediaType"] == "" || r.Hash == "" || r.PrevHash == "" {
		t.Fatalf("newest record %+v", r)
	}
	// Pages of 7 over one target prefix add up to its 10 records, newest first.
	var ids []int64
	next := ""
	for {
		q := "/api/v1/audit?limit=7&target=repo1"
		if next != "" {
			q += "&cursor=" + next
		}
		page, w := get[audit.List](t, h, q)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", q, w.Code, w.Body)
		}
		for _, r := range page.Items {
			ids = append(ids, r.ID)
		}
		if next = page.Next; next == "" {
			break
		}
	}
	if fmt.Sprint(ids) != "[29 26 23 20 17 14 11 8 5 2]" {
		t.Fatalf("target pages: %v", ids)
	}
	since, _ := get[audit.List](t, h, "/api/v1/audit?since="+time.Now().Add(time.Hour).Format(time.RFC3339))
	if len(since.Items) != 0 {
		t.Fatalf("since the future: %d records", len(since.Items))
	}
	since, _ = get[audit.List](t, h, "/api/v1/audit?action=tag.move&since="+start.Add(-time.Second).Format(time.RFC3339Nano))
	if len(since.Items) != 30 {
		t.Fatalf("since the start: %d records", len(since.Items))
	}

	// Configuration: recorded once per change, per target.
	settings := map[string]string{"a": "1", "b": ""}
	for i, c := range []struct {
		target string
		set    map[string]string
		want   bool
	}{
		{"packs.policy", settings, true}, {"packs.policy", settings, false},
		{"packs.policyx", settings, true}, {"packs.policy", settings, false},
		{"packs.policy", map[string]string{"a": "2", "b": ""}, true}, {"packs.policy", settings, true},
	} {
		got, err := rec.RecordConfig(ctx, "system", c.target, c.set)
		if err != nil || got != c.want {
			t.Fatalf("RecordConfig #%d %s %v = %v, %v; want %v", i, c.target, c.set, got, err, c.want)
		}
	}
	ver, _ := get[audit.Verification](t, h, "/api/v1/audit/verify")
	if !ver.OK || ver.Records != 34 || ver.Head.ID != 34 {
		t.Fatalf("verify %+v", ver)
	}
}

// TestVerifyFindsTampering edits and deletes rows behind the store's back.
func TestVerifyFindsTampering(t *testing.T) {
	for _, c := range []struct {
		name, stmt string
		broken     int64
	}{
		{"edited actor", `UPDATE audit_log SET actor = 'someone-else' WHERE id = 5`, 5},
		{"edited time", `UPDATE audit_log SET at = at + 1 WHERE id = 2`, 2},
		{"deleted row", `DELETE FROM audit_log WHERE id = 7`, 7},
		{"deleted first row", `DELETE FROM audit_log WHERE id = 1`, 1},
		{"deleted last row", `DELETE FROM audit_log WHERE id = 10`, 10},
		{"forged row", `INSERT INTO audit_log (id, at, actor, action, target, digest, details, prev_hash, hash)
			VALUES (11, 0, 'x', 'x', 'x', '', '{}', '', '')`, 11},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			for i := range 10 {
				s.AppendAudit(t.Context(), &storage.AuditRecord{Actor: "a", Action: "blob.push", Target: fmt.Sprint("r", i)})
			}
			h := audit.Handler(s, slog.New(slog.DiscardHandler))
			if ver, _ := get[audit.Verification](t, h, "/api/v1/audit/verify"); !ver.OK {
				t.Fatalf("before tampering: %+v", ver)
			}
			if _, err := s.DB().ExecContext(t.Context(), c.stmt); err != nil {
				t.Fatal(err)
			}
			ver, w := get[audit.Verification](t, h, "/api/v1/audit/verify")
			if w.Code != http.StatusOK || ver.OK || ver.FirstBroken != c.broken || ver.Reason == "" {
				t.Fatalf("after %s: %d %+v, want first broken %d", c.stmt, w.Code, ver, c.broken)
			}
		})
	}
}

// failing is an audit log whose database is broken.
type failing struct {
	audit.Log
	err error
}

func (f failing) ListAudit(context.Context, storage.AuditQuery) ([]storage.AuditRecord, error) {
	return nil, f.err
}

// TestInternalErrorsStayInside: a 5xx names the request id and hides the
// cause, which goes to the log with the same id.
func TestInternalErrorsStayInside(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{errors.New("pq: password authentication failed for user secret-admin"), 500, "INTERNAL"},
		{fmt.Errorf("dial tcp 10.1.2.3:5432: %w", storage.ErrUnavailable), 503, "UNAVAILABLE"},
	} {
		var logs bytes.Buffer
		h := audit.Handler(failing{err: c.err}, slog.New(slog.NewTextHandler(&logs, nil)))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/audit", nil))
		var env struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(w.Body.Bytes(), &env)
		id := w.Header().Get("X-Request-Id")
		if w.Code != c.status || env.Error.Code != c.code || id == "" || !strings.Contains(env.Error.Message, id) {
			t.Fatalf("%v: %d %s (request id %q)", c.err, w.Code, w.Body, id)
		}
		if strings.Contains(w.Body.String(), "secret-admin") || strings.Contains(w.Body.String(), "10.1.2.3") {
			t.Fatalf("the answer leaks the cause: %s", w.Body)
		}
		if !strings.Contains(logs.String(), id) || !strings.Contains(logs.String(), c.err.Error()) {
			t.Fatalf("the log lacks the id or the cause: %s", logs.String())
		}
	}
}

// flaky is an audit log whose AuditEvents fails while down is set, as a
// database does during an outage.
type flaky struct {
	audit.Log
	down bool
}

func (f *flaky) AuditEvents(ctx context.Context, n int) (int, error) {
	if f.down {
		return 0, fmt.Errorf("append: %w", storage.ErrUnavailable)
	}
	return f.Log.AuditEvents(ctx, n)
}

// TestRecordsSurviveAFailedAppend: a change whose audit record cannot be
// written when it commits (the trail is down) keeps its event queued, and
// the record appears, exactly once, at the next flush. Before the outbox
// the record was lost for good and audit verify passed all the same.
func TestRecordsSurviveAFailedAppend(t *testing.T) {
	s := open(t)
	f := &flaky{Log: s, down: true}
	rec := audit.NewRecorder(f, slog.New(slog.DiscardHandler))
	rec.Watch()
	ctx := t.Context()
	d := digest.FromBytes(digest.SHA256, []byte("b"))
	e := registry.Event{Action: registry.ActionBlobPush, Repo: "r", Digest: d, Size: 1, Actor: "anonymous@10.0.0.1:5", At: time.Now()}
	if err := s.LinkBlob(ctx, "r", d, 1, e.Record()); err != nil {
		t.Fatalf("the change must not fail with its audit record: %v", err)
	}
	if recs, _ := s.ListAudit(ctx, storage.AuditQuery{}); len(recs) != 0 {
		t.Fatalf("records written while the trail was down: %+v", recs)
	}
	h := audit.Handler(s, slog.New(slog.DiscardHandler))
	if ver, _ := get[audit.Verification](t, h, "/api/v1/audit/verify"); !ver.OK || ver.Pending != 1 {
		t.Fatalf("verify while the record is queued: %+v, want ok with 1 pending", ver)
	}
	f.down = false
	for range 2 {
		if err := rec.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := s.ListAudit(ctx, storage.AuditQuery{})
	if err != nil || len(recs) != 1 || recs[0].Action != "blob.push" || recs[0].Digest != d || recs[0].Actor != e.Actor {
		t.Fatalf("trail after the flush: %+v, %v", recs, err)
	}
	if ver, _ := get[audit.Verification](t, h, "/api/v1/audit/verify"); !ver.OK || ver.Records != 1 || ver.Pending != 0 {
		t.Fatalf("verify after the flush: %+v", ver)
	}
}

// lockstep is one replica's metadata store, whose reads of the trail wait
// until every replica has read: the interleaving in which each of them
// looks before any writes.
type lockstep struct {
	audit.Log
	arrived *sync.WaitGroup
}

func (l lockstep) ListAudit(ctx context.Context, q storage.AuditQuery) ([]storage.AuditRecord, error) {
	recs, err := l.Log.ListAudit(ctx, q)
	l.arrived.Done()
	l.arrived.Wait()
	return recs, err
}

// TestConfigRecordedOnceByReplicas: two replicas (two stores on one
// database) starting at once with a changed policy leave one config.change
// record between them, even when each looks at the trail before the other
// writes. Checking and appending in two steps wrote one record each.
func TestConfigRecordedOnceByReplicas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	var arrived sync.WaitGroup
	arrived.Add(2)
	settings := map[string]string{"count": "1", "policies[0]": `{"require_signature":true}`}
	appended := make([]bool, 2)
	var wg sync.WaitGroup
	var replicas []*sqlmeta.Store
	for i := range 2 {
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		replicas = append(replicas, s)
		rec := audit.NewRecorder(lockstep{Log: s, arrived: &arrived}, slog.New(slog.DiscardHandler))
		wg.Go(func() {
			var err error
			if appended[i], err = rec.RecordConfig(t.Context(), "system", "attest.policies", settings); err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	recs, err := replicas[1].ListAudit(t.Context(), storage.AuditQuery{Action: audit.ActionConfigChange})
	if err != nil || len(recs) != 1 || appended[0] == appended[1] {
		t.Fatalf("replicas appended %v, the trail holds %d config.change records (%v); want exactly one", appended, len(recs), err)
	}
}

// TestWatchRecordsInTheWritingTransaction: once the recorder watches a
// store that audits inline, a change and its record are one write
// transaction (one commit, one fsync), not the change and then a drain,
// and nothing waits in the outbox for the trail.
func TestWatchRecordsInTheWritingTransaction(t *testing.T) {
	s := open(t)
	audit.NewRecorder(s, slog.New(slog.DiscardHandler)).Watch()
	ctx := t.Context()
	d := digest.FromBytes(digest.SHA256, []byte("b"))
	e := registry.Event{Action: registry.ActionBlobPush, Repo: "r", Digest: d, Size: 1, Actor: "anonymous@10.0.0.1:5", At: time.Now()}
	before := s.Writes()
	if err := s.LinkBlob(ctx, "r", d, 1, e.Record()); err != nil {
		t.Fatal(err)
	}
	if n := s.Writes() - before; n != 1 {
		t.Fatalf("a blob push and its record took %d write transactions, want 1", n)
	}
	recs, err := s.ListAudit(ctx, storage.AuditQuery{})
	if err != nil || len(recs) != 1 || recs[0].Action != "blob.push" || recs[0].Digest != d {
		t.Fatalf("trail right after the push: %+v, %v", recs, err)
	}
	if n, err := s.CountPendingEvents(ctx, storage.AuditConsumer); err != nil || n != 0 {
		t.Fatalf("%d events queued for the trail (%v), want none", n, err)
	}
}
