package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/retention"
	"github.com/packreg/packreg/storage"
)

// TestRetentionRoutes: the retention API is the admins', and its body and
// query are held to the admin API's rules: a JSON object of known keys,
// capped, with a JSON content type.
func TestRetentionRoutes(t *testing.T) {
	e := newAuthEnv(t, func(c *Config) {
		c.Retention.Rules = []retention.Rule{{Repositories: []string{"acme/**"}, KeepActive: ptr(0)}}
	})
	body, ct := publishForm("acme/pack", "1.0.0", []byte("data"))
	expect(t, "alice publishes", e.do("basic:alice", "POST", "/api/v1/packs", body, "Content-Type", ct), 201, "")
	js := []string{"Content-Type", "application/json"}
	dry := []byte(`{"dryRun":true}`)
	expect(t, "anonymous runs retention", e.do("", "POST", "/api/v1/retention", dry, js...), 401, "UNAUTHORIZED")
	expect(t, "alice runs retention", e.do("basic:alice", "POST", "/api/v1/retention", dry, js...), 403, "DENIED")
	expect(t, "alice lists runs", e.do("basic:alice", "GET", "/api/v1/retention/runs", nil), 403, "DENIED")
	expect(t, "unknown key", e.do("basic:root", "POST", "/api/v1/retention", []byte(`{"dryRun":true,"force":true}`), js...), 400, "BAD_REQUEST")
	// Go's decoder would read "dryrun" as dryRun: a real run asked for
	// a dry one, or the other way round, would be worse than a refusal.
	for _, p := range []string{"/api/v1/retention", "/api/v1/gc"} {
		r := e.do("basic:root", "POST", p, []byte(`{"dryrun":true}`), js...)
		expect(t, p+" key in another case", r, 400, "BAD_REQUEST")
		if !strings.Contains(string(r.body), `\"dryrun\"`) || !strings.Contains(string(r.body), `\"dryRun\"`) {
			t.Errorf("%s: the refusal does not name the key and the field: %s", p, r.body)
		}
	}
	expect(t, "not JSON", e.do("basic:root", "POST", "/api/v1/retention", dry, "Content-Type", "text/plain"), 415, "")
	expect(t, "too large", e.do("basic:root", "POST", "/api/v1/retention", []byte(`{"dryRun":true,"x":"`+strings.Repeat("a", 8<<10)+`"}`), js...), 413, "")
	expect(t, "a query", e.do("basic:root", "POST", "/api/v1/retention?force=1", dry, js...), 400, "BAD_REQUEST")
	expect(t, "bad before", e.do("basic:root", "GET", "/api/v1/retention/runs?before=x", nil), 400, "BAD_REQUEST")
	expect(t, "bad limit", e.do("basic:root", "GET", "/api/v1/retention/runs?limit=-1", nil), 400, "BAD_REQUEST")

	r := e.do("basic:root", "POST", "/api/v1/retention", dry, js...)
	expect(t, "root dry run", r, 200, "")
	var run retentionRunView
	if err := json.Unmarshal(r.body, &run); err != nil || !run.DryRun || len(run.Items) != 1 || run.Items[0].Action != retention.ActionDeprecate {
		t.Fatalf("dry run answer: %v %s", err, r.body)
	}
	v, err := e.app.packs.svc.Version(t.Context(), "acme/pack", "1.0.0")
	if err != nil || v.Status != storage.PackActive {
		t.Fatalf("after a dry run: %+v %v", v, err)
	}
	expect(t, "root runs retention", e.do("basic:root", "POST", "/api/v1/retention", nil), 200, "")
	if v, err = e.app.packs.svc.Version(t.Context(), "acme/pack", "1.0.0"); err != nil || v.Status != storage.PackDeprecated {
		t.Fatalf("after a run: %+v %v", v, err)
	}
	r = e.do("basic:root", "GET", "/api/v1/retention/runs?limit=1", nil)
	expect(t, "root lists runs", r, 200, "")
	var runs retentionRunList
	if err := json.Unmarshal(r.body, &runs); err != nil || len(runs.Items) != 1 || runs.Items[0].DryRun ||
		runs.Items[0].Counts.Deprecated != 1 || runs.Items[0].Items != nil {
		t.Fatalf("runs: %v %s", err, r.body)
	}
}

// TestRetentionBusy: a real run while another holds the lease is refused
// with 409; a dry run needs no lease.
func TestRetentionBusy(t *testing.T) {
	a := testApp(t, nil)
	ok, err := a.ret.excl.leases.AcquireLease(t.Context(), retentionLease, "another replica", time.Minute)
	if err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	if _, err := a.ret.run(t.Context(), false, "api"); err != errRetentionBusy {
		t.Fatalf("run under another's lease: %v", err)
	}
	if _, err := a.ret.run(t.Context(), true, "api"); err != nil {
		t.Fatalf("dry run under another's lease: %v", err)
	}
}

// TestRetentionScheduled: with retention.schedule set the worker runs the
// rules by itself, recorded with trigger "schedule".
func TestRetentionScheduled(t *testing.T) {
	a := testApp(t, func(c *Config) {
		c.Retention.Schedule = 20 * time.Millisecond
		c.Retention.Rules = []retention.Rule{{Repositories: []string{"**"}}}
	})
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	a.ret.start(ctx, &wg, 20*time.Millisecond)
	t.Cleanup(func() { stop(); wg.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		runs, err := a.ret.svc.Runs(t.Context(), 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) == 1 && runs[0].Trigger == "schedule" && !runs[0].DryRun && runs[0].Error == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scheduled run recorded: %+v", runs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRetentionCLI: `packreg retention --dry-run` prints the plan as a
// table and what a run would do; `packreg retention` makes it; `runs`
// lists both.
func TestRetentionCLI(t *testing.T) {
	h := edgeApp(t, func(c *Config) {
		c.Retention.Rules = []retention.Rule{{Repositories: []string{"acme/**"}, KeepActive: ptr(1)}}
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, v := range []string{"1.0.0", "2.0.0"} {
		body, ct := publishForm("acme/pack", v, []byte("data "+v))
		if w := send(h, http.MethodPost, "/api/v1/packs", body, "Content-Type", ct); w.Code != 201 {
			t.Fatalf("publish: %d %s", w.Code, w.Body)
		}
	}
	words := func(want int, args ...string) string {
		t.Helper()
		code, out, errOut := cliRun(append(args, "--server", srv.URL)...)
		if code != want {
			t.Fatalf("packreg %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errOut)
		}
		return strings.Join(strings.Fields(out), " ")
	}
	out := words(0, "retention", "--dry-run")
	for _, w := range []string{"acme/pack 2.0.0 active keep one of the 1 newest active versions",
		"acme/pack 1.0.0 active deprecate active beyond the 1 newest active versions",
		"would make 1 deprecations, 0 archivals, 0 deletions over 2 versions; 1 kept, 0 failed"} {
		if !strings.Contains(out, w) {
			t.Fatalf("dry run printed %q, want %q in it", out, w)
		}
	}
	if out := words(0, "retention"); !strings.Contains(out, " made 1 deprecations") {
		t.Fatalf("run printed %q", out)
	}
	if out := words(0, "retention", "runs"); !strings.Contains(out, "ID STARTED DRY TRIGGER DEPRECATED") || strings.Count(out, " api ") != 2 {
		t.Fatalf("runs printed %q", out)
	}
	words(2, "retention", "now")
}
