package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestPoll: nil ends the wait, as does an error that is not pending (the
// outcome); a limit that passes first ends it with what was still
// awaited.
func TestPoll(t *testing.T) {
	calls := 0
	failed := errors.New("run failed")
	err := poll(t.Context(), time.Millisecond, time.Minute, func() error {
		if calls++; calls < 3 {
			return pending("not yet")
		}
		return failed
	})
	if !errors.Is(err, failed) || calls != 3 {
		t.Fatalf("poll = %v after %d calls, want %v after 3", err, calls, failed)
	}
	calls = 0
	err = poll(t.Context(), time.Millisecond, time.Minute, func() error {
		if calls++; calls < 2 {
			return pending("not yet")
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("poll = %v after %d calls, want nil after 2", err, calls)
	}
	err = poll(t.Context(), time.Millisecond, 0, func() error { return pending("2 of 3 listed") })
	if err == nil || !strings.Contains(err.Error(), "2 of 3 listed") {
		t.Fatalf("poll past its limit = %v, want what was still awaited", err)
	}
}

// TestAwaitPackCount: the wait ends, without an error, on the walk that
// lists every version. (748ea38's callers returned their "not yet" error
// with done: the full bench's packs suite failed with "the pack index
// lists 10000 versions under bench/packs/, want 10000".)
func TestAwaitPackCount(t *testing.T) {
	var walks int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 3
		if r.URL.Query().Get("cursor") == "" {
			if walks++; walks < 2 {
				n = 1 // the index has not caught up yet
			}
		}
		items := make([]json.RawMessage, n)
		for i := range items {
			items[i] = json.RawMessage(fmt.Sprintf(`{"version":"1.0.%d"}`, i))
		}
		json.NewEncoder(w).Encode(map[string]any{"items": items})
	}))
	defer srv.Close()
	c, err := newClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&bench{c: c}).awaitPackCount(t.Context(), 3); err != nil || walks != 2 {
		t.Fatalf("awaitPackCount = %v after %d walks, want nil after 2", err, walks)
	}
}
