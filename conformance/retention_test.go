package conformance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"
)

// retentionRun is the part of a retention run the tests read.
type retentionRun struct {
	ID     int64  `json:"id"`
	DryRun bool   `json:"dryRun"`
	Error  string `json:"error"`
	Counts struct {
		Versions   int `json:"versions"`
		Kept       int `json:"kept"`
		Deprecated int `json:"deprecated"`
		Archived   int `json:"archived"`
		Deleted    int `json:"deleted"`
		Failed     int `json:"failed"`
	} `json:"counts"`
	Items []struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Status  string `json:"status"`
		Action  string `json:"action"`
		Reason  string `json:"reason"`
		Error   string `json:"error"`
	} `json:"items"`
}

// plan is the run's items without their reasons (which name ages).
func (r retentionRun) plan() []string {
	var out []string
	for _, it := range r.Items {
		out = append(out, fmt.Sprintf("%s:%s %s %s", it.Name, it.Version, it.Status, it.Action))
	}
	return out
}

func retentionCLI(t *testing.T, s *server, args ...string) retentionRun {
	t.Helper()
	out := packregCLI(t, newTool(t), s.URL, 0, append([]string{"retention", "--json"}, args...)...)
	var run retentionRun
	if err := json.Unmarshal([]byte(out), &run); err != nil {
		t.Fatalf("packreg retention --json: %v: %s", err, clip(out))
	}
	return run
}

// TestRetention: the real binary with retention rules, packs pushed with
// oras and signed with cosign by a trusted key. `packreg retention
// --dry-run` lists exactly what the following real run does; the real run
// deprecates beyond keep_active, deletes an archived version (its tag
// gone) but keeps an archived version that is signed and verified unless
// the rule says force, leaves a shielded pack alone, and audits every
// change as actor "retention".
func TestRetention(t *testing.T) {
	cosign := needTool(t, "cosign")
	oras := needTool(t, "oras")
	cfg := t.TempDir() + "/packreg.yaml"
	os.WriteFile(cfg, []byte(`retention:
  rules:
    - repositories: ["ret/keep/**"]
    - repositories: ["ret/*"]
      keep_active: 1
      delete_archived_after: 1s
    - repositories: ["forced/*"]
      delete_archived_after: 1s
      force: true
`), 0o600)
	s := startServer(t, "--config", cfg)
	s.dumpLogOnFailure()
	a := &attestRun{t: t, s: s, c: newClient(t, s.URL), cosign: cosign, oras: oras,
		tl: newTool(t, "COSIGN_PASSWORD=", "COSIGN_YES=true", "TUF_ROOT="+t.TempDir(), "PACKREG_URL="+s.URL)}
	tl := a.tl
	tl.run(cosign, "generate-key-pair")
	tl.run(packregBin, "keys", "add", "--name", "release", "cosign.pub")

	archive := func(repo, v string) {
		a.c.apiJSON("POST", "/api/v1/packs/"+repo+"/versions/"+v+"/lifecycle", http.Header{"Content-Type": {"application/json"}},
			[]byte(`{"state":"archived","reason":"superseded"}`), http.StatusOK, nil)
	}
	for _, v := range []string{"0.9.0", "1.0.0", "1.1.0", "2.0.0"} {
		a.pushPack(t, "ret/app", v)
	}
	for _, pv := range [][2]string{{"ret/app", "0.8.0"}, {"forced/app", "1.0.0"}} {
		ref, _ := a.pushPack(t, pv[0], pv[1])
		tl.run(cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "-y", ref)
		a.await(t, pv[0], pv[1], "verified", 1, 0)
		archive(pv[0], pv[1])
	}
	archive("ret/app", "0.9.0")
	a.pushPack(t, "ret/keep/x", "1.0.0")
	archive("ret/keep/x", "1.0.0")

	want := []string{
		"forced/app:1.0.0 archived delete",
		"ret/app:2.0.0 active keep", "ret/app:1.1.0 active deprecate", "ret/app:1.0.0 active deprecate",
		"ret/app:0.9.0 archived delete", "ret/app:0.8.0 archived keep",
		"ret/keep/x:1.0.0 archived keep",
	}
	// The deletes wait for delete_archived_after (1s) to pass since the
	// archiving: poll the dry run until it plans them.
	var dry retentionRun
	deadline := time.Now().Add(30 * time.Second)
	for {
		dry = retentionCLI(t, s, "--dry-run")
		if slices.Equal(dry.plan(), want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !dry.DryRun || !slices.Equal(dry.plan(), want) {
		t.Fatalf("dry run plan:\n got %q\nwant %q", dry.plan(), want)
	}
	var before packVersion
	a.c.apiJSON("GET", "/api/v1/packs/ret/app/versions/0.9.0", nil, nil, http.StatusOK, &before)
	if before.Status != "archived" {
		t.Fatalf("after the dry run ret/app:0.9.0 is %s, want archived", before.Status)
	}

	real := retentionCLI(t, s)
	if real.DryRun || real.Error != "" || !slices.Equal(real.plan(), dry.plan()) || real.Counts != dry.Counts {
		t.Fatalf("the real run differs from the dry run:\n real %+v %q\n  dry %+v %q", real.Counts, real.plan(), dry.Counts, dry.plan())
	}
	if real.Counts.Deleted != 2 || real.Counts.Deprecated != 2 || real.Counts.Kept != 3 {
		t.Fatalf("counts %+v", real.Counts)
	}

	// The deleted versions' tags are gone; the kept ones are there
	// (archived ones answer 403 DENIED to pulls, as before the run).
	for _, ref := range []struct {
		repo, tag string
		want      int
	}{{"ret/app", "0.9.0", 404}, {"forced/app", "1.0.0", 404}, {"ret/app", "0.8.0", 403}, {"ret/keep/x", "1.0.0", 403}, {"ret/app", "2.0.0", 200}} {
		resp, _ := a.c.do("HEAD", "/v2/"+ref.repo+"/manifests/"+ref.tag, http.Header{"Accept": {mtOCIManifest}}, nil)
		if resp.StatusCode != ref.want {
			t.Errorf("HEAD %s:%s = %d, want %d", ref.repo, ref.tag, resp.StatusCode, ref.want)
		}
	}
	var v packVersion
	a.c.apiJSON("GET", "/api/v1/packs/ret/app/versions/1.1.0", nil, nil, http.StatusOK, &v)
	if v.Status != "deprecated" {
		t.Errorf("ret/app:1.1.0 is %s, want deprecated", v.Status)
	}

	// Every change is in the audit trail, by retention.
	for _, w := range []struct{ action, target string }{
		{"pack.lifecycle", "ret/app:1.1.0"}, {"pack.lifecycle", "ret/app:1.0.0"},
		{"tag.delete", "ret/app:0.9.0"}, {"tag.delete", "forced/app:1.0.0"},
	} {
		waitFor(t, 20*time.Second, w.action+" of "+w.target+" by retention", func() bool {
			var list struct {
				Items []auditEntry `json:"items"`
			}
			a.c.apiJSON("GET", "/api/v1/audit?action="+w.action+"&limit=1000", nil, nil, http.StatusOK, &list)
			return slices.ContainsFunc(list.Items, func(e auditEntry) bool { return e.Actor == "retention" && e.Target == w.target })
		})
	}

	// The metrics count the runs and the real run's changes.
	m := scrapeMetrics(t, s)
	for series, want := range map[string]float64{
		`packreg_runs_total{kind="retention",outcome="succeeded"}`: 1,
		`packreg_retention_changes_total{action="delete"}`:         2,
		`packreg_retention_changes_total{action="deprecate"}`:      2,
		`packreg_retention_changes_total{action="archive"}`:        0,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v", series, m[series], want)
		}
	}
	if m[`packreg_runs_total{kind="retention",outcome="dry_run"}`] < 1 {
		t.Errorf("no retention dry run counted")
	}

	// Both runs are recorded, newest first.
	var runs struct {
		Items []retentionRun `json:"items"`
	}
	a.c.apiJSON("GET", "/api/v1/retention/runs?limit=2", nil, nil, http.StatusOK, &runs)
	if len(runs.Items) != 2 || runs.Items[0].ID != real.ID || runs.Items[0].DryRun || !runs.Items[1].DryRun ||
		runs.Items[0].Counts != real.Counts {
		t.Fatalf("recorded runs: %+v", runs.Items)
	}
}
