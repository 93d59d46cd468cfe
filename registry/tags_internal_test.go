package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// tagsAnswer is the tags list answer as encoding/json writes it.
func tagsAnswer(t testing.TB, name string, tags []string) []byte {
	t.Helper()
	b, err := json.Marshal(struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{name, tags})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTagsJSONIsEncodingJSON: the hand-written answer is encoding/json's,
// byte for byte, for names that need no escaping and for any other.
func TestTagsJSONIsEncodingJSON(t *testing.T) {
	for _, tags := range [][]string{
		{},
		{"latest"},
		{"1.0.0", "1.0.0-rc.1", "sha256-abc.sig", "A_b-c.9"},
		{`q"uote`, `back\slash`, "<script>", "a&b", "tab\there", "nl\n", "\x00", "\x7f", "é", "\xff\xfe", "\u2028"},
	} {
		for _, name := range []string{"acme/rules", "a<b>&\"c"} {
			if got, want := tagsJSON(name, tags), tagsAnswer(t, name, tags); !bytes.Equal(got, want) {
				t.Errorf("tagsJSON(%q, %q) = %s\nwant %s", name, tags, got, want)
			}
		}
	}
}

func FuzzTagsJSON(f *testing.F) {
	f.Add("acme/rules", "latest", `"\<>&`+"\x00\xff")
	f.Fuzz(func(t *testing.T, name, a, b string) {
		tags := []string{a, b}
		if got, want := tagsJSON(name, tags), tagsAnswer(t, name, tags); !bytes.Equal(got, want) {
			t.Fatalf("tagsJSON(%q, %q) = %s\nwant %s", name, tags, got, want)
		}
	})
}

// BenchmarkTagsJSON: the answer of a 1,000-tag page, hand-written
// (tagsJSON) and by encoding/json.
func BenchmarkTagsJSON(b *testing.B) {
	tags := make([]string, 1000)
	for i := range tags {
		tags[i] = fmt.Sprintf("v%06d", i)
	}
	b.Run("tagsJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tagsJSON("bench/list", tags)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tagsAnswer(b, "bench/list", tags)
		}
	})
}
