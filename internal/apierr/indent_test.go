package apierr

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// encoderLayout is what JSON wrote before it streamed: the Encoder's own
// indentation.
func encoderLayout(t testing.TB, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil
	}
	return b.Bytes()
}

func jsonBody(v any) []byte {
	rec := httptest.NewRecorder()
	JSON(rec, 200, v)
	return rec.Body.Bytes()
}

func sameLayout(t testing.TB, v any) {
	t.Helper()
	want, got := encoderLayout(t, v), jsonBody(v)
	if !bytes.Equal(got, want) {
		t.Fatalf("JSON wrote\n%s\nthe Encoder with SetIndent writes\n%s", got, want)
	}
}

type page struct {
	Items []item   `json:"items"`
	Empty []string `json:"empty"`
	Nil   []string `json:"nil"`
	Map   map[string]any
	Next  string `json:"next,omitempty"`
}

type item struct {
	Name  string            `json:"name"`
	Size  int64             `json:"size"`
	Float float64           `json:"float"`
	OK    bool              `json:"ok"`
	Raw   json.RawMessage   `json:"raw,omitempty"`
	Tags  map[string]string `json:"tags"`
	Deep  [][]any           `json:"deep"`
}

func TestJSONLayoutIsTheEncoders(t *testing.T) {
	long := strings.Repeat(`x\"{[,:]}`, 3*indentChunk) // longer than a chunk, punctuation inside a string
	var items []item
	for i := range 3000 { // several chunks of output
		items = append(items, item{Name: "n" + strings.Repeat("é", i%7), Size: int64(i), Float: float64(i) / 3, OK: i%2 == 0,
			Tags: map[string]string{"a": "<b>&", "q\"uote": "back\\slash\n"}, Deep: [][]any{{}, {nil, 1, "s"}, nil}})
	}
	items[7].Raw = json.RawMessage(" { \"spaced\" : [ 1 , 2 ] , \"e\" : { } } ")
	for name, v := range map[string]any{
		"page":          page{Items: items, Empty: []string{}, Map: map[string]any{"k": []any{map[string]any{}}}, Next: "c"},
		"empty object":  struct{}{},
		"empty array":   []int{},
		"null":          nil,
		"string":        "a\"b\\c</script>\u2028",
		"long string":   long,
		"number":        math.MaxInt64,
		"nested empty":  []any{[]any{}, map[string]any{}, []any{[]any{}}},
		"error shape":   Envelope{Error: New(400, "BAD", "bad %q", "x")},
		"unicode keys":  map[string]int{"ü": 1, "\x00": 2, "\\": 3},
		"escaped quote": []string{`"`, `\`, `\"`, `"\`},
	} {
		t.Run(name, func(t *testing.T) { sameLayout(t, v) })
	}
}

// A value the Encoder refuses writes no body, as before.
func TestJSONUnencodableWritesNothing(t *testing.T) {
	if got := jsonBody(map[string]any{"f": math.Inf(1)}); len(got) != 0 {
		t.Fatalf("JSON of an unencodable value wrote %q", got)
	}
}

func FuzzJSONLayout(f *testing.F) {
	for _, s := range []string{"", `"`, `\`, "{[,:]}", "\u2028<>&", "\xff\xfe", strings.Repeat("a", indentChunk+1)} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, k, s string) {
		sameLayout(t, map[string]any{k: []any{s, map[string]any{s: []any{}}, json.RawMessage(`[ ]`), map[string]string{}}, "n": len(s)})
	})
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

func benchPage() page {
	items := make([]item, 1000)
	for i := range items {
		items[i] = item{Name: "bench/packs/p097", Size: int64(i), Tags: map[string]string{"team": "ops", "tier": "gold"},
			Deep: [][]any{{"sha256:c39ad31a554614a4bf2bb488c05a462d58c34765e57bab5af5d6dc223f3ba736", 544}}}
	}
	return page{Items: items}
}

// BenchmarkJSONPage writes a 1,000-item page as JSON does; the Encoder
// sub-benchmark is the Encoder's own indentation, for comparison.
func BenchmarkJSONPage(b *testing.B) {
	v := benchPage()
	b.Run("streamed", func(b *testing.B) {
		b.ReportAllocs()
		w := &discardWriter{h: http.Header{}}
		for b.Loop() {
			JSON(w, 200, v)
		}
	})
	b.Run("Encoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			enc := json.NewEncoder(io.Discard)
			enc.SetIndent("", "  ")
			_ = enc.Encode(v)
		}
	})
}

// TestIndenterBufferComesBack: the buffer a released indenter gives back
// is the next one's. release put a pointer to its own field in the pool
// and then cleared that field, so every answer grew a buffer from nothing
// and the next indenter read the field while the last one cleared it.
func TestIndenterBufferComesBack(t *testing.T) {
	in := newIndenter(io.Discard)
	if _, err := in.Write([]byte(`{"a":[1,2,3]}`)); err != nil {
		t.Fatal(err)
	}
	if err := in.finish(); err != nil {
		t.Fatal(err)
	}
	in.release()
	// The race detector's sync.Pool drops a quarter of what is put in it
	// (New then makes a fresh buffer); either way none comes back empty.
	next := newIndenter(io.Discard)
	defer next.release()
	if cap(next.out) < indentChunk {
		t.Fatalf("the next indenter's buffer holds %d bytes, want the %d-byte one given back", cap(next.out), indentChunk)
	}
}
