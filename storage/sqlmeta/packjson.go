package sqlmeta

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// Reading back the files and labels columns of pack_versions, which every
// row of a packs page decodes: encoding/json spent a quarter of the page's
// CPU on them. The columns hold what putPackVersion wrote with
// json.Marshal, so the common shape (keys in that order, plain ASCII
// strings, canonical integers) is read here, its strings sharing the
// column's memory; anything else (escapes, non-ASCII, another layout) goes
// to json.Unmarshal, whose result is the reference the test holds this to.

// decodeFiles is json.Unmarshal of a files column into a []PackFile.
func decodeFiles(col string) ([]storage.PackFile, error) {
	if fs, ok := readFiles(col); ok {
		return fs, nil
	}
	var fs []storage.PackFile
	err := json.Unmarshal([]byte(col), &fs)
	return fs, err
}

// decodeLabels is json.Unmarshal of a labels column, with no labels nil.
func decodeLabels(col string) (map[string]string, error) {
	if col == "{}" {
		return nil, nil
	}
	m, ok := readLabels(col)
	if !ok {
		m = nil
		if err := json.Unmarshal([]byte(col), &m); err != nil {
			return nil, err
		}
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// readFiles reads json.Marshal's layout of a []PackFile; false for
// anything else.
func readFiles(col string) ([]storage.PackFile, bool) {
	r := jsonReader{s: col}
	r.lit("[")
	// One file per '{' at most: one allocation for the slice.
	out := make([]storage.PackFile, 0, strings.Count(col, "{"))
	for !r.bad && !strings.HasPrefix(r.s, "]") {
		if len(out) > 0 {
			r.lit(",")
		}
		var f storage.PackFile
		r.lit(`{"name":`)
		f.Name = r.str()
		r.lit(`,"digest":`)
		f.Digest = digest.Digest(r.str())
		r.lit(`,"size":`)
		f.Size = r.int()
		r.lit(`,"mediaType":`)
		f.MediaType = r.str()
		r.lit("}")
		out = append(out, f)
	}
	r.lit("]")
	return out, r.done()
}

// readLabels reads json.Marshal's layout of a map[string]string; false for
// anything else.
func readLabels(col string) (map[string]string, bool) {
	r := jsonReader{s: col}
	r.lit("{")
	m := make(map[string]string, strings.Count(col, `":"`))
	for first := true; !r.bad && !strings.HasPrefix(r.s, "}"); first = false {
		if !first {
			r.lit(",")
		}
		k := r.str()
		r.lit(":")
		m[k] = r.str()
	}
	r.lit("}")
	return m, r.done()
}

// jsonReader consumes a JSON text from the front; once something is not
// in the expected shape, bad is set and every later read is a no-op.
type jsonReader struct {
	s   string
	bad bool
}

func (r *jsonReader) done() bool { return !r.bad && r.s == "" }

// lit consumes l.
func (r *jsonReader) lit(l string) {
	if r.bad || !strings.HasPrefix(r.s, l) {
		r.bad = true
		return
	}
	r.s = r.s[len(l):]
}

// str consumes a string with no escapes, control or non-ASCII bytes,
// which decodes to its bytes as they are.
func (r *jsonReader) str() string {
	if r.bad || !strings.HasPrefix(r.s, `"`) {
		r.bad = true
		return ""
	}
	for i := 1; i < len(r.s); i++ {
		switch c := r.s[i]; {
		case c == '"':
			v := r.s[1:i]
			r.s = r.s[i+1:]
			return v
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			r.bad = true
			return ""
		}
	}
	r.bad = true
	return ""
}

// int consumes an integer written as strconv.FormatInt writes it.
func (r *jsonReader) int() int64 {
	i := 0
	for i < len(r.s) && (r.s[i] == '-' || '0' <= r.s[i] && r.s[i] <= '9') {
		i++
	}
	tok := r.s[:i]
	n, err := strconv.ParseInt(tok, 10, 64)
	digits := strings.TrimPrefix(tok, "-")
	// ParseInt takes leading zeros and "-0", which JSON does not (or, for
	// "-0", which FormatInt never writes): those go to json.Unmarshal.
	if r.bad || err != nil || digits == "" || digits[0] == '0' && (len(tok) > 1) {
		r.bad = true
		return 0
	}
	r.s = r.s[i:]
	return n
}
