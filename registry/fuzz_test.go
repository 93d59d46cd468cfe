package registry

import (
	"bytes"
	"encoding/json"
	"math/big"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// Native fuzz targets for the registry's parsers of outside input: the
// manifest/index parser, the blob Range and upload Content-Range parsers,
// and the name, tag and reference grammars. Each asserts what an accepted
// input means, and where the grammar is small enough to restate here, that
// exactly the right inputs are accepted. Seeds are in testdata/fuzz; `go
// test` runs them as ordinary tests and `make fuzz-short` fuzzes briefly.

// FuzzParseManifest: an accepted manifest has a known media type, refs that
// are valid digests of its own descriptors, reads the same when parsed
// again (as sent and re-encoded), and means the same to a case-sensitive
// JSON reader that keeps the first of duplicate keys as to Go's, which
// folds key case and keeps the last: otherwise the refs we check and keep
// are not the blobs such a client fetches.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"sha256:`+strings.Repeat("a", 64)+`","size":2},"layers":[]}`), "")
	f.Fuzz(func(t *testing.T, payload []byte, ct string) {
		m, doc, err := parseManifest(payload, ct)
		if err != nil {
			if status, code, _ := answer(err); status != http.StatusBadRequest || code != "MANIFEST_INVALID" {
				t.Fatalf("rejected with %v, want 400 MANIFEST_INVALID", err)
			}
			return
		}
		if !oci.IsManifest(m.MediaType) {
			t.Fatalf("accepted media type %q", m.MediaType)
		}
		if p, _, err := mime.ParseMediaType(ct); err == nil && doc.MediaType != "" && p != doc.MediaType {
			t.Fatalf("Content-Type %q accepted for a %q body", ct, doc.MediaType)
		}
		if len(m.Refs) > maxDescriptors {
			t.Fatalf("%d refs", len(m.Refs))
		}
		for _, d := range m.Refs {
			if _, err := digest.Parse(string(d)); err != nil {
				t.Fatalf("ref %q: %v", d, err)
			}
		}
		if _, err := digest.Parse(string(m.Subject)); m.Subject != "" && err != nil {
			t.Fatalf("subject %q: %v", m.Subject, err)
		}
		want, ok := readExact(payload)
		if !ok {
			t.Fatalf("accepted %q, which is not a JSON object", payload)
		}
		if want.mediaType != doc.MediaType || !slices.Equal(want.refs, refStrings(m.Refs)) || want.subject != string(m.Subject) {
			t.Fatalf("Go reads %q as %q %v subject %q; a case-sensitive reader as %q %v subject %q",
				payload, doc.MediaType, m.Refs, m.Subject, want.mediaType, want.refs, want.subject)
		}
		again, _, err := parseManifest(payload, m.MediaType)
		if err != nil || !sameManifest(m, again) {
			t.Fatalf("parsing %q again as %s: %v, %+v", payload, m.MediaType, err, again)
		}
		enc, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if again, _, err = parseManifest(enc, m.MediaType); err != nil || !sameManifest(m, again) {
			t.Fatalf("re-encoded %q parses as %+v, %v; want %+v", enc, again, err, m)
		}
	})
}

func sameManifest(a, b *storage.Manifest) bool {
	return a.MediaType == b.MediaType && a.ArtifactType == b.ArtifactType &&
		slices.Equal(a.Refs, b.Refs) && a.Subject == b.Subject
}

func refStrings(ds []digest.Digest) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d)
	}
	return out
}

// exactView is what parseManifest reads, as a reader that matches keys
// exactly sees it.
type exactView struct {
	mediaType string
	refs      []string // config then layers, or manifests
	subject   string
}

func readExact(payload []byte) (exactView, bool) {
	if !json.Valid(payload) {
		return exactView{}, false
	}
	v, err := firstWins(json.NewDecoder(bytes.NewReader(payload)))
	top, _ := v.(map[string]any)
	if err != nil || top == nil {
		return exactView{}, false
	}
	dg := func(v any) string {
		o, _ := v.(map[string]any)
		s, _ := o["digest"].(string)
		return s
	}
	var x exactView
	x.mediaType, _ = top["mediaType"].(string)
	if c, ok := top["config"]; ok && c != nil {
		x.refs = append(x.refs, dg(c))
	}
	for _, key := range []string{"layers", "manifests"} {
		list, _ := top[key].([]any)
		for _, d := range list {
			x.refs = append(x.refs, dg(d))
		}
	}
	if s, ok := top["subject"]; ok && s != nil {
		x.subject = dg(s)
	}
	return x, true
}

// firstWins reads one JSON value as a reader that matches keys exactly and
// keeps the first of duplicate keys does.
func firstWins(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		m := map[string]any{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := firstWins(dec)
			if err != nil {
				return nil, err
			}
			if _, dup := m[k.(string)]; !dup {
				m[k.(string)] = v
			}
		}
		_, err = dec.Token()
		return m, err
	case json.Delim('['):
		var list []any
		for dec.More() {
			v, err := firstWins(dec)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		_, err = dec.Token()
		return list, err
	}
	return tok, nil
}

// rangeRE is RFC 9110's single byte range (the unit is case-insensitive).
var rangeRE = regexp.MustCompile(`^(?i:bytes)=([0-9]*)-([0-9]*)$`)

// FuzzParseRange: a Range the parser accepts lies inside the blob and is
// exactly the RFC 9110 reading of the header (numbers of any length: a
// last-pos past the end, however long, means "to the end"); another unit
// or several ranges are ignored (the whole blob); anything else is 416
// naming the size.
func FuzzParseRange(f *testing.F) {
	f.Add("bytes=2-4", int64(10))
	f.Fuzz(func(t *testing.T, hdr string, size int64) {
		if size < 0 {
			size = ^size
		}
		start, end, partial, err := parseRange(hdr, size)
		if hdr == "" {
			if err != nil || partial || start != 0 || end != size-1 {
				t.Fatalf("no Range on %d bytes: %d-%d %v %v", size, start, end, partial, err)
			}
			return
		}
		if unit, spec, ok := strings.Cut(hdr, "="); ok && (!strings.EqualFold(unit, "bytes") || strings.Contains(spec, ",")) {
			if err != nil || partial || start != 0 || end != size-1 {
				t.Fatalf("Range %q on %d bytes: %d-%d %v %v, want it ignored", hdr, size, start, end, partial, err)
			}
			return
		}
		ws, we, ok := refRange(hdr, size)
		if !ok {
			if status, _, h := answer(err); status != http.StatusRequestedRangeNotSatisfiable ||
				h.Get("Content-Range") != "bytes */"+strconv.FormatInt(size, 10) {
				t.Fatalf("Range %q on %d bytes: %d-%d %v, want 416", hdr, size, start, end, err)
			}
			return
		}
		if err != nil || !partial || start != ws || end != we {
			t.Fatalf("Range %q on %d bytes: %d-%d %v %v, want %d-%d", hdr, size, start, end, partial, err, ws, we)
		}
		if start < 0 || start > end || end >= size {
			t.Fatalf("Range %q on %d bytes: %d-%d is outside the blob", hdr, size, start, end)
		}
	})
}

// refRange reads hdr by the RFC's grammar, in arbitrary precision.
func refRange(hdr string, size int64) (start, end int64, ok bool) {
	m := rangeRE.FindStringSubmatch(hdr)
	if m == nil || m[1] == "" && m[2] == "" {
		return 0, 0, false
	}
	num := func(s string) *big.Int { n, _ := new(big.Int).SetString(s, 10); return n }
	sz := big.NewInt(size)
	last := new(big.Int).Sub(sz, big.NewInt(1))
	if m[1] == "" { // suffix
		n := num(m[2])
		if n.Sign() == 0 || size == 0 {
			return 0, 0, false
		}
		if n.Cmp(sz) > 0 {
			n = sz
		}
		return size - n.Int64(), size - 1, true
	}
	first := num(m[1])
	if first.Cmp(sz) >= 0 {
		return 0, 0, false
	}
	if m[2] != "" {
		lp := num(m[2])
		if lp.Cmp(first) < 0 {
			return 0, 0, false
		}
		if lp.Cmp(last) < 0 {
			last = lp
		}
	}
	return first.Int64(), last.Int64(), true
}

// contentRangeRE is what a PATCH or PUT may say: "start-end" (the OCI
// form) or RFC 9110's "bytes start-end/total", total "*" when unknown.
var contentRangeRE = regexp.MustCompile(`^(?:bytes )?([0-9]+)-([0-9]+)(?:/(\*|[0-9]+))?$`)

// FuzzContentRange: a chunk is accepted exactly when its Content-Range is
// well formed, consistent (end >= start, total past end), starts at the
// session's offset and matches a known Content-Length; each refusal has
// the status and code BAD_INPUTS.md gives it, and a 416 tells the client
// where to resume.
func FuzzContentRange(f *testing.F) {
	f.Add("0-3", int64(0), int64(4))
	f.Fuzz(func(t *testing.T, cr string, offset, contentLength int64) {
		if offset < 0 {
			offset = ^offset
		}
		contentLength = max(contentLength, -1)
		u := &storage.Upload{ID: "u", Repo: "r", Offset: offset}
		err := checkContentRange(cr, contentLength, u)
		status, code := refContentRange(cr, offset, contentLength)
		if status == 0 {
			if err != nil {
				t.Fatalf("Content-Range %q at offset %d, length %d: %v", cr, offset, contentLength, err)
			}
			return
		}
		gotStatus, gotCode, h := answer(err)
		if gotStatus != status || gotCode != code {
			t.Fatalf("Content-Range %q at offset %d, length %d: %v, want %d %s", cr, offset, contentLength, err, status, code)
		}
		if status == http.StatusRequestedRangeNotSatisfiable && (h.Get("Location") == "" || h.Get("Range") != uploadRange(u)) {
			t.Fatalf("416 without Location and Range: %v", h)
		}
	})
}

// refContentRange is the answer BAD_INPUTS.md gives; 0 is "accept".
func refContentRange(cr string, offset, contentLength int64) (int, string) {
	if cr == "" {
		return 0, ""
	}
	m := contentRangeRE.FindStringSubmatch(cr)
	if m == nil {
		return http.StatusBadRequest, "BLOB_UPLOAD_INVALID"
	}
	start, err1 := strconv.ParseInt(m[1], 10, 64)
	end, err2 := strconv.ParseInt(m[2], 10, 64)
	if err1 != nil || err2 != nil {
		return http.StatusBadRequest, "BLOB_UPLOAD_INVALID" // no chunk is that large
	}
	if end < start {
		return http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID"
	}
	if total, err := strconv.ParseInt(m[3], 10, 64); err == nil && total <= end {
		return http.StatusBadRequest, "BLOB_UPLOAD_INVALID"
	}
	if start != offset {
		return http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID"
	}
	if contentLength >= 0 && big.NewInt(contentLength).Cmp(new(big.Int).Add(big.NewInt(end-start), big.NewInt(1))) != 0 {
		return http.StatusBadRequest, "SIZE_INVALID"
	}
	return 0, ""
}

// The distribution-spec grammars, as regular expressions: the hand-written
// checks must agree with them exactly.
var (
	specNameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	specTagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// FuzzNames: oci.ValidName and oci.ValidTag are the spec's grammars, and a
// reference is a tag or a digest, never both, refused as DIGEST_INVALID.
func FuzzNames(f *testing.F) {
	f.Add("acme/rules")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := oci.ValidName(s), len(s) <= oci.MaxNameLen && specNameRE.MatchString(s); got != want {
			t.Fatalf("oci.ValidName(%q) = %v, the spec says %v", s, got, want)
		}
		if got, want := oci.ValidTag(s), specTagRE.MatchString(s); got != want {
			t.Fatalf("oci.ValidTag(%q) = %v, the spec says %v", s, got, want)
		}
		ref, err := parseReference(s)
		if err != nil {
			if status, code, _ := answer(err); status != http.StatusBadRequest || code != "DIGEST_INVALID" {
				t.Fatalf("reference %q refused with %v", s, err)
			}
			if _, derr := digest.Parse(s); derr == nil || !strings.Contains(s, ":") && oci.ValidTag(s) {
				t.Fatalf("valid reference %q refused: %v", s, err)
			}
			return
		}
		if (ref.tag == "") == (ref.digest == "") || ref.tag != "" && ref.tag != s || ref.digest != "" && string(ref.digest) != s {
			t.Fatalf("reference %q parsed as %+v", s, ref)
		}
		if ref.digest != "" {
			if _, err := digest.Parse(s); err != nil {
				t.Fatalf("reference %q accepted as a digest: %v", s, err)
			}
		} else if !oci.ValidTag(s) {
			t.Fatalf("reference %q accepted as a tag", s)
		}
	})
}
