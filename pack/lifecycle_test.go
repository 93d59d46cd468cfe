package pack_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/pack"
)

// TestTransitions drives every (from, to, force) through the API: the
// allowed ones answer 200 and move the version, the others 409 and leave it.
func TestTransitions(t *testing.T) {
	const (
		A = "active"
		D = "deprecated"
		X = "archived"
	)
	allowed := map[string]bool{
		A + ">" + D: true, D + ">" + A: true, A + ">" + X: true, D + ">" + X: true,
		X + ">" + A + "+force": true,
	}
	// How to bring a fresh (active) version into each state.
	reach := map[string][]string{A: nil, D: {D}, X: {X}}
	e := newEnv(t, pack.DefaultPolicy())
	n := 0
	for _, from := range []string{A, D, X} {
		for _, to := range []string{A, D, X} {
			for _, force := range []bool{false, true} {
				key := from + ">" + to
				if force {
					key += "+force"
				}
				want := allowed[key] || force && allowed[from+">"+to]
				if got := pack.Transition(from, to, force); got != want {
					t.Errorf("Transition(%s) = %v, want %v", key, got, want)
				}
				t.Run(key, func(t *testing.T) {
					n++
					version := fmt.Sprintf("1.0.%d", n)
					e.mustPublish(pack.Metadata{Name: "t/lifecycle", Version: version}, rulesYAML)
					for _, s := range reach[from] {
						if w := e.lifecycle("t/lifecycle", version, s, "setup", false); w.Code != http.StatusOK {
							t.Fatalf("setup to %s: %d %s", s, w.Code, w.Body)
						}
					}
					w := e.lifecycle("t/lifecycle", version, to, "because", force)
					if !want {
						expectError(t, w, http.StatusConflict, apierr.TransitionInvalid)
						if v := e.version("t/lifecycle", version); v.Status != from {
							t.Fatalf("refused transition left the version %s, want %s", v.Status, from)
						}
						return
					}
					if w.Code != http.StatusOK {
						t.Fatalf("%d %s", w.Code, w.Body)
					}
					v := decode[pack.Version](t, w)
					if v.Status != to || v.StatusReason != "because" {
						t.Fatalf("after %s: %s %q", key, v.Status, v.StatusReason)
					}
				})
			}
		}
	}
}

func (e *env) version(name, version string) pack.Version {
	e.t.Helper()
	w := e.do("GET", pack.Prefix+"/"+name+"/versions/"+version, nil)
	if w.Code != http.StatusOK {
		e.t.Fatalf("GET version %s:%s: %d %s", name, version, w.Code, w.Body)
	}
	return decode[pack.Version](e.t, w)
}

// TestPackLifecycle: a whole-pack change is all or nothing, leaves
// versions already in the target state alone, and records history and
// audit per version.
func TestPackLifecycle(t *testing.T) {
	e := newEnv(t, pack.DefaultPolicy())
	for _, v := range []string{"1.0.0", "1.1.0", "2.0.0"} {
		e.mustPublish(pack.Metadata{Name: "acme/rules", Version: v}, file{name: "r", data: []byte(v)})
	}
	if w := e.lifecycle("acme/rules", "1.0.0", "archived", "broken", false); w.Code != http.StatusOK {
		t.Fatalf("archive 1.0.0: %d %s", w.Code, w.Body)
	}
	// archived → deprecated is not allowed: nothing changes.
	w := e.lifecycle("acme/rules", "", "deprecated", "moving on", false)
	msg := expectError(t, w, http.StatusConflict, apierr.TransitionInvalid)
	var refusal struct {
		Error struct {
			Details struct{ Refused []map[string]string }
		}
	}
	json.Unmarshal(w.Body.Bytes(), &refusal)
	if r := refusal.Error.Details.Refused; !strings.Contains(msg, "nothing was changed") || len(r) != 1 || r[0]["version"] != "1.0.0" || r[0]["from"] != "archived" {
		t.Fatalf("refusal does not name the version: %s", w.Body)
	}
	for _, v := range []string{"1.1.0", "2.0.0"} {
		if s := e.version("acme/rules", v).Status; s != "active" {
			t.Fatalf("%s is %s after a refused pack-wide change", v, s)
		}
	}
	// Archive everything: 1.0.0 is already archived and stays as it is.
	w = e.lifecycle("acme/rules", "", "archived", "end of life", false)
	if w.Code != http.StatusOK {
		t.Fatalf("archive pack: %d %s", w.Code, w.Body)
	}
	got := decode[pack.Versions](t, w)
	var states []string
	for _, v := range got.Versions {
		states = append(states, v.Version+"="+v.Status+":"+v.StatusReason)
	}
	if want := "1.0.0=archived:broken 1.1.0=archived:end of life 2.0.0=archived:end of life"; strings.Join(states, " ") != want {
		t.Fatalf("after archiving the pack: %s, want %s", strings.Join(states, " "), want)
	}
	// Restoring archived versions needs force.
	expectError(t, e.lifecycle("acme/rules", "", "active", "", false), http.StatusConflict, apierr.TransitionInvalid)
	if w := e.lifecycle("acme/rules", "", "active", "restored", true); w.Code != http.StatusOK {
		t.Fatalf("forced restore: %d %s", w.Code, w.Body)
	}
	hist := decode[pack.Lifecycle](t, e.do("GET", pack.Prefix+"/acme/rules/versions/1.0.0/lifecycle", nil))
	var steps []string
	for _, h := range hist.History {
		steps = append(steps, h.From+">"+h.To)
		if !strings.HasPrefix(h.Actor, "anonymous@") || h.At.IsZero() {
			t.Errorf("history entry %+v lacks actor or time", h)
		}
	}
	if want := ">active active>archived archived>active"; strings.Join(steps, " ") != want {
		t.Fatalf("history of 1.0.0: %s, want %s", strings.Join(steps, " "), want)
	}
	all := decode[pack.Lifecycle](t, e.do("GET", pack.Prefix+"/acme/rules/lifecycle", nil))
	if len(all.History) != 3+3+3 { // published, archived and restored, for each
		t.Fatalf("pack history has %d entries: %+v", len(all.History), all.History)
	}
	// One audit record per version changed, with the transition.
	recs := e.audit("action=pack.lifecycle")
	if len(recs) != 1+2+3 {
		t.Fatalf("%d pack.lifecycle audit records, want 6", len(recs))
	}
	if r := recs[0]; r.Details["from"] != "archived" || r.Details["to"] != "active" || r.Details["force"] != "true" || r.Digest == "" {
		t.Fatalf("latest lifecycle record %+v", r)
	}
}
