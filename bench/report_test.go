package main

import "testing"

// A -rounds 1 run (the smoke's) said "1 samples each" in its header.
func TestPlural(t *testing.T) {
	for n, want := range map[int]string{0: "0 samples", 1: "1 sample", 2: "2 samples", 1000: "1,000 samples"} {
		if got := plural(n, "sample"); got != want {
			t.Errorf("plural(%d) = %q, want %q", n, got, want)
		}
	}
}
