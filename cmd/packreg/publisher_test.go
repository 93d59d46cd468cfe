package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
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

// listenAddr is a log handler that hands serve's listening address over.
type listenAddr chan string

func (l listenAddr) Enabled(context.Context, slog.Level) bool { return true }
func (l listenAddr) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l listenAddr) WithGroup(string) slog.Handler            { return l }
func (l listenAddr) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "listening" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "addr" {
				l <- a.Value.String()
			}
			return true
		})
	}
	return nil
}

// A version published right before a graceful shutdown (while the
// worker waits out its quiet period, 1 s) still gets its publish run,
// recorded on the way out for the next worker: before, it was dropped
// with the worker's memory.
func TestPublicationJustBeforeShutdownGetsItsRun(t *testing.T) {
	c := DefaultConfig()
	c.Data = t.TempDir()
	c.Addr = "127.0.0.1:0"
	c.Mirrors.Remotes = []mirror.Settings{{Name: "eu", Kind: "mirror", URL: "http://127.0.0.1:5001", Include: []string{"acme/**"}}}
	if err := c.Resolve(); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	addrs := make(listenAddr, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serve(ctx, c, slog.New(addrs)) }()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-served:
		t.Fatalf("serve ended: %v", err)
	}
	body, ct := publishForm("acme/rules", "1.0.0", []byte("rules: []\n"))
	resp, err := http.Post("http://"+addr+"/api/v1/packs", ct, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("publish: %s", resp.Status)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	st, err := openStores(t.Context(), c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ms, err := st.meta.ListMirrors(t.Context(), "mirror")
	if err != nil || len(ms) != 1 {
		t.Fatalf("mirrors %v %v", ms, err)
	}
	runs, err := st.meta.ListMirrorRuns(t.Context(), ms[0].ID, "", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Trigger != "publish" || !strings.Contains(runs[0].Scope, `"acme/rules"`) {
		for _, r := range runs {
			t.Logf("run %+v", *r)
		}
		t.Fatalf("%d runs, want one publish run for acme/rules", len(runs))
	}
}
