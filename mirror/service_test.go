package mirror_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/mirror"
	"github.com/packreg/packreg/pack"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// primary is a packreg with a mirror service: its registry, the mirror
// API, and a worker running until the test ends.
type primary struct {
	*testReg
	svc *mirror.Service
	api *httptest.Server
}

var mutable = pack.Policy{RequireSemver: true}

func newPrimary(t *testing.T, opts ...mirror.Option) *primary {
	t.Helper()
	return newPrimaryWorker(t, mirror.WorkerOptions{Tick: 100 * time.Millisecond, LeaseTTL: 2 * time.Second, Debounce: 50 * time.Millisecond}, opts...)
}

// newPrimaryWorker is newPrimary with its worker's options.
func newPrimaryWorker(t *testing.T, wo mirror.WorkerOptions, opts ...mirror.Option) *primary {
	t.Helper()
	return newPrimaryOver(t, wo, nil, opts...)
}

// newPrimaryOver is newPrimaryWorker with the service's store as wrap
// makes it of the registry's (wrap nil: as it is).
func newPrimaryOver(t *testing.T, wo mirror.WorkerOptions, wrap func(mirror.Store) mirror.Store, opts ...mirror.Option) *primary {
	t.Helper()
	var svc *mirror.Service
	observe := func(ctx context.Context, e registry.Event) { svc.Observe(ctx, e) }
	fetch := fetcherFunc(func(ctx context.Context, repo, ref string) error { return svc.FetchManifest(ctx, repo, ref) })
	r := newPackReg(t, mutable, registry.WithSubscriber(observe), registry.WithFetcher(fetch))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var st mirror.Store = r.Meta
	if wrap != nil {
		st = wrap(st)
	}
	svc = mirror.New(st, r.Reg, append([]mirror.Option{mirror.WithPackIndex(r.Meta),
		mirror.WithLogger(quiet), mirror.WithRetry(mirror.Retry{Attempts: 3, Base: 20 * time.Millisecond, Max: 100 * time.Millisecond})}, opts...)...)
	p := &primary{testReg: r, svc: svc, api: httptest.NewServer(svc.Handler())}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.RunWorker(ctx, wo)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		p.api.Close()
	})
	return p
}

type fetcherFunc func(ctx context.Context, repo, ref string) error

func (f fetcherFunc) FetchManifest(ctx context.Context, repo, ref string) error {
	return f(ctx, repo, ref)
}

// call sends a JSON request to the mirror API and decodes the answer.
func (p *primary) call(t *testing.T, method, path string, body any, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.api.URL+path, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// sync starts a sync of a remote and waits for the run to end.
func (p *primary) sync(t *testing.T, kind, id string) mirror.RunView {
	t.Helper()
	var started struct{ Run int64 }
	p.call(t, "POST", "/api/v1/"+kind+"s/"+id+"/sync", nil, http.StatusAccepted, &started)
	return p.waitRun(t, kind, id, started.Run)
}

func (p *primary) waitRun(t *testing.T, kind, id string, run int64) mirror.RunView {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var v mirror.RunView
		p.call(t, "GET", fmt.Sprintf("/api/v1/%ss/%s/runs/%d", kind, id, run), nil, http.StatusOK, &v)
		if v.State != storage.RunRunning {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %d still running: %+v", run, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *primary) parity(t *testing.T, id string) mirror.ParityReport {
	t.Helper()
	var res mirror.ParityResult
	p.call(t, "POST", "/api/v1/parity", map[string]string{"mirror": id}, http.StatusOK, &res)
	if len(res.Reports) != 1 || res.InParity != res.Reports[0].InParity {
		t.Fatalf("parity answer: %+v", res)
	}
	return res.Reports[0]
}

func statusOf(t *testing.T, r *testReg, name, version string) string {
	t.Helper()
	vs, err := r.Meta.ListPackVersions(context.Background(), storage.PackQuery{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Version == version {
			return v.Status
		}
	}
	return ""
}

func TestMirrorSyncParityLifecycle(t *testing.T) {
	ctx := context.Background()
	a := newPrimary(t)
	b := newPackReg(t, mutable)
	fx := publish(a.testReg, "acme/rules", "1.0.0")
	publish(a.testReg, "other/rules", "1.0.0") // not covered

	// Credentials are stored, never shown.
	var v mirror.View
	a.call(t, "POST", "/api/v1/mirrors", map[string]any{"name": "eu", "url": b.Srv.URL, "include": []string{"acme/*"},
		"onPublish": false, "credentials": map[string]string{"token": "s3cr3t-token"}}, http.StatusCreated, &v)
	if v.ID == "" || v.Auth != "bearer" || v.Credentials != nil || len(v.States) != 2 {
		t.Fatalf("created: %+v", v)
	}
	var raw json.RawMessage
	a.call(t, "GET", "/api/v1/mirrors", nil, http.StatusOK, &raw)
	if strings.Contains(string(raw), "s3cr3t") || !strings.Contains(string(raw), `"eu"`) {
		t.Fatalf("list shows credentials or misses the mirror: %s", raw)
	}
	a.call(t, "POST", "/api/v1/mirrors", map[string]any{"name": "eu", "url": b.Srv.URL}, http.StatusConflict, nil)
	a.call(t, "POST", "/api/v1/mirrors", map[string]any{"name": "Bad Name", "url": "ftp://x"}, http.StatusBadRequest, nil)
	a.call(t, "POST", "/api/v1/mirrors", map[string]any{"name": "x", "url": b.Srv.URL, "surprise": 1}, http.StatusBadRequest, nil)
	a.call(t, "GET", "/api/v1/upstreams/"+v.ID, nil, http.StatusNotFound, nil)

	run := a.sync(t, "mirror", v.ID)
	if run.State != storage.RunSucceeded || run.Counts.VersionsDone != 1 || run.Counts.ManifestsCopied != 4 || run.Finished == nil {
		t.Fatalf("first sync: %+v", run)
	}
	checkCopied(t, b, "acme/rules", "1.0.0", fx)
	if b.resolve("other/rules", "1.0.0") != "" {
		t.Fatal("a pack outside include was mirrored")
	}
	if st := statusOf(t, b, "acme/rules", "1.0.0"); st != storage.PackActive {
		t.Fatalf("mirror's pack index: %q", st)
	}
	run = a.sync(t, "mirror", v.ID)
	if run.State != storage.RunSucceeded || run.Counts.VersionsDone != 1 || (mirror.Stats{ManifestsCopied: run.Counts.ManifestsCopied,
		BlobsCopied: run.Counts.BlobsCopied, TagsMoved: run.Counts.TagsMoved}).Copied() {
		t.Fatalf("second sync copied again: %+v", run)
	}
	if rep := a.parity(t, v.ID); !rep.InParity || rep.Counts[mirror.InSync] != 1 {
		t.Fatalf("parity after sync: %+v", rep)
	}

	// The version moves on the primary: out of sync until the next sync.
	moved := a.pack("acme/rules", "1.0.0", []byte("new rules"))
	rep := a.parity(t, v.ID)
	if rep.InParity || len(rep.Entries) != 1 || rep.Entries[0].Status != mirror.OutOfSync || rep.Entries[0].PrimaryDigest != moved.Digest.String() {
		t.Fatalf("parity after re-push: %+v", rep)
	}
	var latest mirror.ParityReport
	a.call(t, "GET", "/api/v1/parity?mirror="+v.ID+"&status=out_of_sync", nil, http.StatusOK, &latest)
	if latest.ID != rep.ID || len(latest.Entries) != 1 {
		t.Fatalf("stored parity: %+v", latest)
	}
	a.sync(t, "mirror", v.ID)
	if rep := a.parity(t, v.ID); !rep.InParity {
		t.Fatalf("parity after the next sync: %+v", rep)
	}
	// A referrer the mirror lacks.
	r := a.referrer("acme/rules", moved, "application/vnd.example.scan", []byte(`{"scan":"clean"}`))
	rep = a.parity(t, v.ID)
	if rep.InParity || rep.Entries[0].Status != mirror.ReferrersIncomplete || !strings.Contains(rep.Entries[0].Detail, r.Digest.String()) {
		t.Fatalf("parity with a new referrer: %+v", rep)
	}
	// An extra version on the mirror.
	b.pack("acme/rules", "9.9.9", []byte("rogue"))
	a.sync(t, "mirror", v.ID)
	rep = a.parity(t, v.ID)
	if rep.InParity || rep.Counts[mirror.Extra] != 1 || rep.Counts[mirror.InSync] != 1 {
		t.Fatalf("parity with an extra version: %+v", rep)
	}
	var hist struct{ Items []mirror.ParityReport }
	a.call(t, "GET", "/api/v1/parity/history?mirror="+v.ID, nil, http.StatusOK, &hist)
	if len(hist.Items) < 5 || hist.Items[0].ID != rep.ID {
		t.Fatalf("parity history: %+v", hist.Items)
	}

	// Lifecycle travels: deprecated, then archived (and archived is not
	// extra: the primary still has it).
	for _, state := range []string{storage.PackDeprecated, storage.PackArchived} {
		if _, err := a.Packs.SetLifecycle(ctx, "acme/rules", "1.0.0", pack.LifecycleRequest{State: state, Reason: "test"}); err != nil {
			t.Fatal(err)
		}
		run := a.sync(t, "mirror", v.ID)
		if run.State != storage.RunSucceeded || run.Counts.LifecycleChanged != 1 {
			t.Fatalf("sync after %s: %+v", state, run)
		}
		if st := statusOf(t, b, "acme/rules", "1.0.0"); st != state {
			t.Fatalf("mirror state %q, want %s", st, state)
		}
	}
	rep = a.parity(t, v.ID)
	if rep.Counts[mirror.Extra] != 1 || len(rep.Entries) != 1 {
		t.Fatalf("parity with the version archived: %+v", rep)
	}
	// Back to active on the primary: the mirror follows (forced there).
	if _, err := a.Packs.SetLifecycle(ctx, "acme/rules", "1.0.0", pack.LifecycleRequest{State: storage.PackActive, Force: true}); err != nil {
		t.Fatal(err)
	}
	a.sync(t, "mirror", v.ID)
	if st := statusOf(t, b, "acme/rules", "1.0.0"); st != storage.PackActive {
		t.Fatalf("mirror state %q after reactivation", st)
	}

	// Deleted on the primary: a mirror never deletes, and a deleted
	// version is no lifecycle state to carry over.
	req, _ := http.NewRequest("DELETE", a.Srv.URL+"/v2/acme/rules/manifests/1.0.0", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("tag delete on the primary: %v %v", resp, err)
	}
	if st := statusOf(t, a.testReg, "acme/rules", "1.0.0"); st != storage.PackDeleted {
		t.Fatalf("primary state after the delete: %q", st)
	}
	if run := a.sync(t, "mirror", v.ID); run.State != storage.RunSucceeded || len(run.Errors) != 0 || run.Counts.LifecycleChanged != 0 {
		t.Fatalf("sync after a delete on the primary: %+v", run)
	}
	if st := statusOf(t, b, "acme/rules", "1.0.0"); st != storage.PackActive {
		t.Fatalf("mirror state %q after a delete on the primary", st)
	}

	var runs struct{ Items []mirror.RunView }
	a.call(t, "GET", "/api/v1/mirrors/"+v.ID+"/runs?limit=2", nil, http.StatusOK, &runs)
	if len(runs.Items) != 2 || runs.Items[0].ID <= runs.Items[1].ID {
		t.Fatalf("runs: %+v", runs.Items)
	}
	a.call(t, "DELETE", "/api/v1/mirrors/"+v.ID, nil, http.StatusNoContent, nil)
	a.call(t, "GET", "/api/v1/mirrors/"+v.ID+"/runs", nil, http.StatusNotFound, nil)
	if b.resolve("acme/rules", "1.0.0") == "" {
		t.Fatal("deleting the mirror touched its content")
	}
}

// TestMirrorOnPublish: a push on the primary reaches the mirror by itself.
func TestMirrorOnPublish(t *testing.T) {
	a := newPrimary(t)
	b := newTestReg(t)
	var v mirror.View
	a.call(t, "POST", "/api/v1/mirrors", map[string]any{"name": "eu", "url": b.Srv.URL, "include": []string{"acme/**"}, "prefix": "copies"}, http.StatusCreated, &v)
	fx := publish(a.testReg, "acme/team/rules", "2.0.0")
	deadline := time.Now().Add(20 * time.Second)
	for b.resolve("copies/acme/team/rules", "2.0.0") == "" {
		if time.Now().After(deadline) {
			t.Fatal("published pack never reached the mirror")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The tag moves last, but the cosign signature may still be in flight
	// from a second publish run; wait for the runs to end.
	deadline = time.Now().Add(20 * time.Second)
	for {
		var runs struct{ Items []mirror.RunView }
		a.call(t, "GET", "/api/v1/mirrors/"+v.ID+"/runs", nil, http.StatusOK, &runs)
		busy := len(runs.Items) == 0
		for _, r := range runs.Items {
			busy = busy || r.State == storage.RunRunning
			if r.Trigger != "publish" || r.State == storage.RunFailed {
				t.Fatalf("run %+v", r)
			}
		}
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish runs never finished: %+v", runs.Items)
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkCopied(t, b, "copies/acme/team/rules", "2.0.0", fx)
}

// TestUpstreamPullAndPullThrough: an upstream syncs on demand, and a pull
// that misses in its namespace fetches the version.
func TestUpstreamPullAndPullThrough(t *testing.T) {
	a := newPackReg(t, mutable)
	fx := publish(a, "acme/rules", "1.0.0")
	fx2 := publish(a, "acme/rules", "2.0.0")
	c := newPrimary(t)
	var v mirror.View
	c.call(t, "POST", "/api/v1/upstreams", map[string]any{"name": "hq", "url": a.Srv.URL, "include": []string{"acme/*"}, "prefix": "hq", "versions": "<2.0.0"},
		http.StatusCreated, &v)

	// Pull-through: a GET on the registry's own HTTP API.
	resp, err := http.Get(c.Srv.URL + "/v2/hq/acme/rules/manifests/2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("pull-through outside the version range: %d", resp.StatusCode)
	}
	resp, err = http.Get(c.Srv.URL + "/v2/hq/acme/rules/manifests/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || sha(body) != dg(fx.pack) {
		t.Fatalf("pull-through: %d %s", resp.StatusCode, body)
	}
	checkCopied(t, c.testReg, "hq/acme/rules", "1.0.0", fx)
	for _, p := range []string{"/v2/acme/rules/manifests/1.0.0", "/v2/hq/other/manifests/1.0.0"} {
		resp, _ := http.Get(c.Srv.URL + p)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET %s outside the namespace: %d", p, resp.StatusCode)
		}
	}

	// A pull sync, after the range widened.
	c.call(t, "PUT", "/api/v1/upstreams/"+v.ID, map[string]any{"name": "hq", "url": a.Srv.URL, "include": []string{"acme/*"}, "prefix": "hq"},
		http.StatusOK, &v)
	run := c.sync(t, "upstream", v.ID)
	if run.State != storage.RunSucceeded || run.Counts.VersionsDone != 2 {
		t.Fatalf("pull sync: %+v", run)
	}
	checkCopied(t, c.testReg, "hq/acme/rules", "2.0.0", fx2)
	if st := statusOf(t, c.testReg, "hq/acme/rules", "2.0.0"); st != storage.PackActive {
		t.Fatalf("pulled version not in the pack index: %q", st)
	}
	// Parity of an upstream: the remote is the primary.
	var res mirror.ParityResult
	c.call(t, "POST", "/api/v1/parity", map[string]string{"mirror": v.ID}, http.StatusOK, &res)
	if !res.InParity || res.Reports[0].Counts[mirror.InSync] != 2 {
		t.Fatalf("upstream parity: %+v", res)
	}

	// An unreachable upstream fails the run and deletes nothing.
	a.Srv.Close()
	run = c.sync(t, "upstream", v.ID)
	if run.State != storage.RunFailed || len(run.Errors) == 0 {
		t.Fatalf("sync from a dead upstream: %+v", run)
	}
	if c.resolve("hq/acme/rules", "1.0.0") == "" {
		t.Fatal("a failed pull removed local content")
	}
	resp, err = http.Get(c.Srv.URL + "/v2/hq/acme/rules/manifests/3.0.0")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("pull-through from a dead upstream: %d, want 503", resp.StatusCode)
	}
	// The client is told no upstream answered, not that storage is down.
	if !strings.Contains(string(body), "no upstream answered") {
		t.Fatalf("pull-through from a dead upstream says %s", body)
	}
}

// TestWorkerResumesInterruptedRun: a run left running by a dead worker is
// carried on, its earlier counts kept, nothing copied twice.
func TestWorkerResumesInterruptedRun(t *testing.T) {
	ctx := context.Background()
	b := newTestReg(t)
	a := newPrimary(t)
	publish(a.testReg, "acme/rules", "1.0.0")
	var v mirror.View
	a.call(t, "POST", "/api/v1/mirrors", map[string]any{"name": "eu", "url": b.Srv.URL, "onPublish": false}, http.StatusCreated, &v)
	// What a worker that died mid-run leaves: a run held by someone else,
	// half of the content copied.
	if _, err := mirror.NewEngine(a.local(), b.remote(), mirror.EngineOptions{}).Copy(ctx, mirror.Job{"acme/rules", "acme/rules", "sha256-" + a.resolve("acme/rules", "1.0.0").Hex() + ".sig"}); err != nil {
		t.Fatal(err)
	}
	store := a.Meta
	now := time.Now().UTC()
	run := &storage.MirrorRun{MirrorID: v.ID, Kind: "sync", Trigger: "api", State: storage.RunRunning, Holder: "dead-worker",
		Counts: `{"manifestsCopied":1,"blobsCopied":3}`, Errors: "[]", Attempts: 1, Started: now, Updated: now}
	if err := store.CreateMirrorRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	got := a.waitRun(t, "mirror", v.ID, run.ID)
	if got.State != storage.RunSucceeded || got.Attempts != 2 {
		t.Fatalf("resumed run: %+v", got)
	}
	// 1 signature before + the pack and its sbom and sbom signature now.
	if got.Counts.ManifestsCopied != 4 {
		t.Fatalf("resumed run counts: %+v", got.Counts)
	}
	if rep := a.parity(t, v.ID); !rep.InParity {
		t.Fatalf("parity after the resumed run: %+v", rep)
	}
}

// TestWorkerSchedules: a remote with schedules gets a sync and a parity
// check as soon as the worker sees it (none ran before), recorded as runs.
func TestWorkerSchedules(t *testing.T) {
	a := newPrimary(t)
	b := newTestReg(t)
	publish(a.testReg, "acme/rules", "1.0.0")
	var v mirror.View
	a.call(t, "POST", "/api/v1/mirrors", map[string]any{"name": "eu", "url": b.Srv.URL, "onPublish": false,
		"schedule": "1h", "paritySchedule": "1h"}, http.StatusCreated, &v)
	a.call(t, "POST", "/api/v1/mirrors", map[string]any{"name": "fast", "url": b.Srv.URL, "schedule": "1s"}, http.StatusBadRequest, nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var runs struct{ Items []mirror.RunView }
		a.call(t, "GET", "/api/v1/mirrors/"+v.ID+"/runs", nil, http.StatusOK, &runs)
		done := map[string]mirror.RunView{}
		for _, r := range runs.Items {
			if r.Trigger != "schedule" || r.State == storage.RunFailed {
				t.Fatalf("unexpected run %+v", r)
			}
			if r.State == storage.RunSucceeded {
				done[r.Kind] = r
			}
		}
		if len(done) == 2 {
			if done["sync"].Counts.VersionsDone != 1 || done["parity"].Counts.ParityCheck == 0 || len(runs.Items) != 2 {
				t.Fatalf("scheduled runs: %+v", runs.Items)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scheduled runs never finished: %+v", runs.Items)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b.resolve("acme/rules", "1.0.0") == "" {
		t.Fatal("scheduled sync copied nothing")
	}
}
