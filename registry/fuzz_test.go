package registry

import (
	"errors"
	"math/big"
	"net/http"
	"regexp"
	"strconv"
	"testing"
)

// Native fuzz targets for the registry's parsers of outside input: the
// manifest/index parser, the blob Range and upload Content-Range parsers,
// and the name, tag and reference grammars. Each asserts what an accepted
// input means, and where the grammar is small enough to restate here, that
// exactly the right inputs are accepted. Seeds are in testdata/fuzz; `go
// test` runs them as ordinary tests and `make fuzz-short` fuzzes briefly.

// rangeRE is RFC 9110's single byte range (the unit is case-insensitive);
// several ranges are refused by design.
var rangeRE = regexp.MustCompile(`^(?i:bytes)=([0-9]*)-([0-9]*)$`)

// FuzzParseRange: a Range the parser accepts lies inside the blob and is
// exactly the RFC 9110 reading of the header (numbers of any length: a
// last-pos past the end, however long, means "to the end"); anything else
// is 416 naming the size.
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
		ws, we, ok := refRange(hdr, size)
		if !ok {
			var oe *Error
			if !errors.As(err, &oe) || oe.Status != http.StatusRequestedRangeNotSatisfiable ||
				oe.header.Get("Content-Range") != "bytes */"+strconv.FormatInt(size, 10) {
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
