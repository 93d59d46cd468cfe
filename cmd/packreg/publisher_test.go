package main

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/mirror"
)

// A replica without the mirror worker (mirrors.worker: false) still
// turns a publication into a run, which the other replicas' workers
// carry out: before, the publication stayed in its memory and a mirror
// that syncs on publish only never got the version.
func TestPublicationOnAReplicaWithoutTheWorker(t *testing.T) {
	a := testApp(t, func(c *Config) {
		c.Mirrors.Worker = false
		c.Mirrors.Tick = 50 * time.Millisecond
		c.Mirrors.Remotes = []mirror.Settings{{Name: "eu", Kind: "mirror", URL: "http://127.0.0.1:5001", Include: []string{"acme/**"}}}
	})
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	a.mir.start(ctx, &wg)
	t.Cleanup(func() { stop(); wg.Wait() })
	body, ct := publishForm("acme/rules", "1.0.0", []byte("rules: []\n"))
	if w := send(a.handler, "POST", "/api/v1/packs", body, "Content-Type", ct); w.Code != 201 {
		t.Fatalf("publish: %d %s", w.Code, w.Body)
	}
	var mirrors struct{ Items []mirror.View }
	w := send(a.handler, "GET", "/api/v1/mirrors", nil)
	if err := json.Unmarshal(w.Body.Bytes(), &mirrors); err != nil || len(mirrors.Items) != 1 {
		t.Fatalf("mirrors: %d %s", w.Code, w.Body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var runs struct{ Items []mirror.RunView }
		w := send(a.handler, "GET", "/api/v1/mirrors/"+mirrors.Items[0].ID+"/runs", nil)
		if err := json.Unmarshal(w.Body.Bytes(), &runs); err != nil {
			t.Fatalf("runs: %d %s", w.Code, w.Body)
		}
		if len(runs.Items) == 1 && runs.Items[0].Trigger == "publish" {
			if got := runs.Items[0].Scope.Packs; len(got) != 1 || got[0] != "acme/rules" {
				t.Fatalf("the run's scope is %v, want [acme/rules]", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no publish run recorded for the mirror: %s", w.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
