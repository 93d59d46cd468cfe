package attest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode"
)

// FuzzDecodeStrict: the decoder every signed document goes through accepts
// only one JSON object with no key twice in an object and at most maxDepth
// levels, and accepts every such object whose keys also differ in more
// than ASCII case (keys equal but for case are for the decoder to refuse:
// Go's decoder folds case). The other attest targets reach it only through
// the document parsers, which check what they read, not what it refuses.
// Duplicates are found by counting: the keys in the token stream against
// the keys encoding/json kept (one of each).
func FuzzDecodeStrict(f *testing.F) {
	f.Add([]byte(`{"critical":{"image":{"docker-manifest-digest":"sha256:0"}},"optional":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var v, plain any
		err := decodeStrict(b, &v)
		if json.Unmarshal(b, &plain) != nil {
			if err == nil {
				t.Fatalf("accepted %q, which is not JSON", b)
			}
			return
		}
		_, isObject := plain.(map[string]any)
		inStream, depth := streamKeys(b)
		kept, folded, ascii := keptKeys(plain)
		wellFormed := isObject && inStream == kept && depth <= maxDepth
		if err == nil && !wellFormed {
			t.Fatalf("accepted %q: an object %v, %d keys of which %d differ, %d deep", b, isObject, inStream, kept, depth)
		}
		if err != nil && wellFormed && ascii && folded == kept {
			t.Fatalf("refused %q: %v", b, err)
		}
	})
}

// streamKeys counts the object keys in b's tokens and its deepest nesting.
func streamKeys(b []byte) (keys, depth int) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var open []json.Delim // containers entered and not yet left
	key := false          // the next token is an object key
	for {
		tok, err := dec.Token()
		if err != nil {
			return keys, depth
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			open = append(open, tok.(json.Delim))
			depth = max(depth, len(open))
			key = tok == json.Delim('{')
			continue
		case json.Delim('}'), json.Delim(']'):
			open = open[:len(open)-1]
		default:
			if key {
				keys++
				key = false
				continue
			}
		}
		// A value ended: inside an object, a key comes next.
		key = len(open) > 0 && open[len(open)-1] == '{'
	}
}

// keptKeys counts the keys of every object in a decoded value, and those
// left when keys equal but for ASCII case count once; ascii is whether
// every key is ASCII.
func keptKeys(v any) (kept, folded int, ascii bool) {
	ascii = true
	add := func(e any) {
		k, f, a := keptKeys(e)
		kept, folded, ascii = kept+k, folded+f, ascii && a
	}
	switch x := v.(type) {
	case map[string]any:
		lower := map[string]bool{}
		for k, e := range x {
			lower[strings.ToLower(k)] = true
			ascii = ascii && !strings.ContainsFunc(k, func(r rune) bool { return r > unicode.MaxASCII })
			add(e)
		}
		kept, folded = kept+len(x), folded+len(lower)
	case []any:
		for _, e := range x {
			add(e)
		}
	}
	return kept, folded, ascii
}
