package main

import (
	"slices"
	"testing"
)

// A walk follows the Link's last=, so an answer whose Link does not name
// its own last tag must fail the walk, in either registry's spelling.
func TestTagsAnswer(t *testing.T) {
	body := []byte(`{"name":"r","tags":["a","b"]}`)
	for _, link := range []string{
		`</v2/r/tags/list?last=b&n=2>; rel="next"`, // Distribution
		`</v2/r/tags/list?n=2&last=b>; rel="next"`, // packreg
	} {
		next, err := linkLast(link)
		if err != nil || next != "b" {
			t.Fatalf("linkLast(%s) = %q, %v; want b", link, next, err)
		}
		tags, err := tagsAnswer{body: body, next: next}.tags()
		if err != nil || !slices.Equal(tags, []string{"a", "b"}) {
			t.Errorf("tags() = %q, %v", tags, err)
		}
	}
	if _, err := (tagsAnswer{body: body, next: "a"}).tags(); err == nil {
		t.Error("a Link to last=a after a page ending in b passed")
	}
	for _, bad := range []string{`/v2/r/tags/list?last=b`, `</v2/r/tags/list?n=2>; rel="next"`, `<%zz>`} {
		if next, err := linkLast(bad); err == nil {
			t.Errorf("linkLast(%s) = %q, want an error", bad, next)
		}
	}
}
