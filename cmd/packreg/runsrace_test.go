package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/retention"
)

// TestRunsAskedAtOnce: collections, retention runs and scrubs asked for
// at once, real and dry, while their schedules run too and packs are
// published. A real run either runs or answers 409 (one at a time per
// kind), a dry one always runs, and the recorded runs are exactly the
// ones answered 200 and no more (the scheduled ones are
// told apart by their trigger).
func TestRunsAskedAtOnce(t *testing.T) {
	a := testApp(t, func(c *Config) {
		c.Retention.Rules = []retention.Rule{{Repositories: []string{"acme/**"}, KeepActive: ptr(1)}}
	})
	h := a.handler
	publish := func(i int) {
		body, ct := publishForm("acme/pack", fmt.Sprintf("1.0.%d", i), []byte(fmt.Sprint("data ", i)))
		if w := send(h, "POST", "/api/v1/packs", body, "Content-Type", ct); w.Code != http.StatusCreated {
			t.Errorf("publish %d: %d %s", i, w.Code, w.Body)
		}
	}
	publish(0)
	ctx, stop := context.WithCancel(t.Context())
	var sched sync.WaitGroup
	a.gc.start(ctx, &sched, time.Millisecond)
	a.ret.start(ctx, &sched, time.Millisecond)
	a.scrub.start(ctx, &sched, time.Millisecond)
	t.Cleanup(func() { stop(); sched.Wait() })
	var wg sync.WaitGroup
	var api [2]map[string]*atomic.Int64 // [dry] path -> runs answered 200
	for dry := range api {
		api[dry] = map[string]*atomic.Int64{}
		for _, p := range []string{gcPrefix, retentionPrefix} {
			api[dry][p] = &atomic.Int64{}
		}
	}
	for i := range 12 {
		wg.Go(func() {
			p := []string{gcPrefix, retentionPrefix, scrubPrefix}[i%3]
			dry := i%2 == 1 && p != scrubPrefix
			body := fmt.Appendf(nil, `{"dryRun":%v}`, dry)
			if p == scrubPrefix {
				body = []byte(`{}`)
			}
			w := send(h, "POST", p, body, "Content-Type", "application/json")
			switch {
			case w.Code == http.StatusOK && p != scrubPrefix:
				api[btoi(dry)][p].Add(1)
			case w.Code == http.StatusOK, w.Code == http.StatusConflict && !dry:
			default:
				t.Errorf("POST %s dry %v: %d %s", p, dry, w.Code, w.Body)
			}
		})
		if i%4 == 0 {
			wg.Go(func() { publish(i/4 + 1) })
		}
	}
	wg.Wait()
	for dry := range api {
		for p, n := range api[dry] {
			w := send(h, "GET", p+"/runs?limit=100", nil)
			var runs struct {
				Items []struct {
					DryRun  bool   `json:"dryRun"`
					Trigger string `json:"trigger"`
				} `json:"items"`
			}
			if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &runs) != nil {
				t.Fatalf("GET %s/runs: %d %s", p, w.Code, w.Body)
			}
			got := int64(0)
			for _, r := range runs.Items {
				if r.DryRun == (dry == 1) && r.Trigger == "api" {
					got++
				}
			}
			if got != n.Load() {
				t.Errorf("%s (dry %v): %d runs recorded, %d answered", p, dry == 1, got, n.Load())
			}
		}
	}
}
