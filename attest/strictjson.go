package attest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Everything attest parses is signed or about signed bytes, and two
// parsers that read the same bytes differently are how signature checks
// get bypassed: a duplicated "docker-manifest-digest" that cosign reads one
// way and we read another, trailing data after the object, a number where
// a string belongs. So every document goes through decodeStrict first: one
// JSON value, no duplicate keys at any depth, bounded nesting, then a
// normal decode into the typed struct. Keys are compared the way Go's
// decoder matches them to struct fields, case-insensitively with Unicode
// folding ("Critical", "doc\u212Aer-..."): to it those are one field, and
// the last would win.

const maxDepth = 64

var errNotJSON = errors.New("not a JSON object")

// decodeStrict decodes b into v after checking that b is exactly one JSON
// object with no duplicate keys.
func decodeStrict(b []byte, v any) error {
	if err := checkJSON(b); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	return nil
}

// checkJSON walks the tokens of b: one object, nothing after it, no key
// twice in one object, at most maxDepth levels.
func checkJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errNotJSON
	}
	if err := walkObject(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid JSON: data after the object")
	}
	return nil
}

// walkObject reads the rest of an object whose '{' was just read.
func walkObject(dec *json.Decoder, depth int) error {
	if depth > maxDepth {
		return errors.New("invalid JSON: nested too deep")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("invalid JSON: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return errors.New("invalid JSON: object key is not a string")
		}
		folded := foldKey(key)
		if seen[folded] {
			return fmt.Errorf("invalid JSON: duplicate key %q (keys differing only in case are duplicates)", clip(key))
		}
		seen[folded] = true
		if err := walkValue(dec, depth); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	return nil
}

// foldKey maps keys that encoding/json would match to the same struct
// field to one string: ASCII letters upper-cased, other runes to the
// smallest rune of their Unicode fold orbit (so KELVIN SIGN is K and LONG
// S is S), which is bytes.EqualFold, what the decoder uses.
func foldKey(k string) string {
	var b strings.Builder
	b.Grow(len(k))
	for _, r := range k {
		if r < utf8.RuneSelf {
			b.WriteRune(unicode.ToUpper(r))
			continue
		}
		for {
			f := unicode.SimpleFold(r)
			if f <= r {
				r = f
				break
			}
			r = f
		}
		b.WriteRune(r)
	}
	return b.String()
}

func walkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		return walkObject(dec, depth+1)
	case '[':
		if depth+1 > maxDepth {
			return errors.New("invalid JSON: nested too deep")
		}
		for dec.More() {
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // ']'
			return fmt.Errorf("invalid JSON: %w", err)
		}
	}
	return nil
}

// decodeBase64 accepts standard and URL-safe base64, padded or not: the
// DSSE spec allows either, and cosign writes standard padded. Whitespace is
// not allowed; it would let two encodings of one signature hash apart.
func decodeBase64(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	if strings.ContainsAny(s, "\r\n\t ") {
		return nil, errors.New("whitespace in base64")
	}
	if strings.ContainsAny(s, "-_") {
		s = strings.TrimRight(s, "=")
		return base64.RawURLEncoding.Strict().DecodeString(s)
	}
	if strings.HasSuffix(s, "=") {
		return base64.StdEncoding.Strict().DecodeString(s)
	}
	return base64.RawStdEncoding.Strict().DecodeString(s)
}

// clip shortens outside text before it goes into a reason or an error.
func clip(s string) string {
	const n = 120
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
