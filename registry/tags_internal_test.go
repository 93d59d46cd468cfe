package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/packreg/packreg/storage"
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
			want := tagsAnswer(t, name, tags)
			if got := tagsJSON(name, tags); !bytes.Equal(got, want) {
				t.Errorf("tagsJSON(%q, %q) = %s\nwant %s", name, tags, got, want)
			}
			checkJoinedTagsJSON(t, name, tags, want)
		}
	}
}

// checkJoinedTagsJSON: joinedTagsJSON of tags joined is want, when no tag
// holds the separator (a store never joins those).
func checkJoinedTagsJSON(t *testing.T, name string, tags []string, want []byte) {
	t.Helper()
	joined := strings.Join(tags, storage.TagSeparator)
	if strings.Count(joined, storage.TagSeparator) != max(len(tags)-1, 0) {
		return
	}
	if got := joinedTagsJSON(name, joined, len(tags)); !bytes.Equal(got, want) {
		t.Errorf("joinedTagsJSON(%q, %q, %d) = %s\nwant %s", name, joined, len(tags), got, want)
	}
}

func FuzzTagsJSON(f *testing.F) {
	f.Add("acme/rules", "latest", `"\<>&`+"\x00\xff")
	f.Fuzz(func(t *testing.T, name, a, b string) {
		tags := []string{a, b}
		want := tagsAnswer(t, name, tags)
		if got := tagsJSON(name, tags); !bytes.Equal(got, want) {
			t.Fatalf("tagsJSON(%q, %q) = %s\nwant %s", name, tags, got, want)
		}
		checkJoinedTagsJSON(t, name, tags, want)
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
