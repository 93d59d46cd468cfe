package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPoll: done ends the wait with check's outcome; a limit that passes
// first ends it with what was still awaited.
func TestPoll(t *testing.T) {
	calls := 0
	failed := errors.New("run failed")
	err := poll(t.Context(), time.Millisecond, time.Minute, func() (bool, error) {
		calls++
		if calls < 3 {
			return false, errors.New("not yet")
		}
		return true, failed
	})
	if !errors.Is(err, failed) || calls != 3 {
		t.Fatalf("poll = %v after %d calls, want %v after 3", err, calls, failed)
	}
	err = poll(t.Context(), time.Millisecond, 0, func() (bool, error) { return false, errors.New("2 of 3 listed") })
	if err == nil || !strings.Contains(err.Error(), "2 of 3 listed") {
		t.Fatalf("poll past its limit = %v, want what was still awaited", err)
	}
}
