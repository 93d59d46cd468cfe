package registry

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/packreg/packreg/oci"
)

// page reads n and last. n absent means the maximum page; n is clamped to
// it so a huge n never costs more than one page of memory.
func (r *Registry) page(req *http.Request) (n int, last string, err error) {
	q := req.URL.Query()
	n = r.maxPage
	if s := q.Get("n"); s != "" {
		v, perr := strconv.Atoi(s)
		if perr != nil || v < 0 {
			if len(s) > 0 && s[0] != '-' && perr != nil && allDigits(s) {
				v, perr = r.maxPage, nil // too large for an int: clamp like any big n
			} else {
				return 0, "", oci.Errorf(oci.ErrSizeInvalid, "n must be a non-negative integer, got %q", clip(s))
			}
		}
		n = min(v, r.maxPage)
	}
	last = q.Get("last")
	if len(last) > oci.MaxNameLen {
		return 0, "", oci.Errorf(oci.ErrNameInvalid, "last is longer than %d characters", oci.MaxNameLen)
	}
	return n, last, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// listPage fetches one item more than n to learn whether a next page exists,
// and sets the Link header when it does.
func listPage(w http.ResponseWriter, req *http.Request, n int, last string,
	list func(last string, n int) ([]string, error)) ([]string, error) {
	if n == 0 {
		return []string{}, nil
	}
	items, err := list(last, n+1)
	if err != nil {
		return nil, err
	}
	if len(items) > n {
		items = items[:n]
		q := url.Values{"n": {strconv.Itoa(n)}, "last": {items[n-1]}}
		w.Header().Set("Link", "<"+req.URL.Path+"?"+q.Encode()+`>; rel="next"`)
	}
	if items == nil {
		items = []string{}
	}
	return items, nil
}

func (r *Registry) tagsList(w http.ResponseWriter, req *http.Request, rt route) error {
	n, last, err := r.page(req)
	if err != nil {
		return err
	}
	ctx := req.Context()
	tags, err := listPage(w, req, n, last, func(last string, n int) ([]string, error) {
		return r.Tags(ctx, rt.name, last, n)
	})
	if err != nil {
		return err
	}
	// A tag is always of a repository that exists (it points at a
	// manifest): only an empty page asks whether the name is known, a
	// query less for every other listing.
	if len(tags) == 0 {
		exists, err := r.meta.RepositoryExists(ctx, rt.name)
		if err != nil {
			return err
		}
		if !exists {
			return oci.Errorf(oci.ErrNameUnknown, "repository %s not known to the registry", rt.name)
		}
	}
	return writeBody(w, http.StatusOK, "application/json", tagsJSON(rt.name, tags))
}

// tagsJSON is json.Marshal of the tags list answer ({"name","tags"}),
// byte for byte, without reflection: encoding/json was a tenth of a
// 1,000-tag listing's CPU. Names and tags the grammars allow need no
// escaping and are copied; any other string goes through json.Marshal.
func tagsJSON(name string, tags []string) []byte {
	size := len(`{"name":"","tags":[]}`) + len(name)
	for _, t := range tags {
		size += len(t) + 3 // quotes and comma
	}
	b := make([]byte, 0, size)
	b = append(b, `{"name":`...)
	b = appendJSONString(b, name)
	b = append(b, `,"tags":[`...)
	for i, t := range tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t)
	}
	return append(b, "]}"...)
}

// appendJSONString appends s as encoding/json writes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plainJSON[s[i]] {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func (r *Registry) catalog(w http.ResponseWriter, req *http.Request, _ route) error {
	n, last, err := r.page(req)
	if err != nil {
		return err
	}
	ctx := req.Context()
	var resume string
	repos, err := listPage(w, req, n, last, func(last string, n int) ([]string, error) {
		if !restricted(ctx) {
			return r.Repositories(ctx, last, n)
		}
		names, cursor, err := r.pullableRepositories(ctx, last, n)
		resume = cursor
		return names, err
	})
	if err != nil {
		return err
	}
	if resume != "" && w.Header().Get("Link") == "" {
		// The scan stopped at its bound before a full page: the next page
		// goes on from the last name read.
		q := url.Values{"n": {strconv.Itoa(n)}, "last": {resume}}
		w.Header().Set("Link", "<"+req.URL.Path+"?"+q.Encode()+`>; rel="next"`)
	}
	return writeJSON(w, http.StatusOK, struct {
		Repositories []string `json:"repositories"`
	}{repos})
}

// maxCatalogScan bounds the names one catalog page reads to find those the
// caller may pull.
const maxCatalogScan = 10000

// pullableRepositories returns up to n names > last that ctx's caller may
// pull, in order. When the scan reaches maxCatalogScan first, it returns
// what it found and the last name read, to resume from.
func (r *Registry) pullableRepositories(ctx context.Context, last string, n int) ([]string, string, error) {
	var out []string
	batch := min(max(n, 100), maxCatalogScan)
	for scanned := 0; ; {
		names, err := r.meta.ListRepositories(ctx, last, batch)
		if err != nil {
			return nil, "", err
		}
		for _, name := range names {
			last = name
			scanned++
			if MayPull(ctx, name) {
				if out = append(out, name); len(out) == n {
					return out, "", nil
				}
			}
		}
		if len(names) < batch {
			return out, "", nil
		}
		if scanned >= maxCatalogScan {
			return out, last, nil
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeBody(w, status, "application/json", b)
}

// writeBody answers b in one write, with its length.
func writeBody(w http.ResponseWriter, status int, contentType string, b []byte) error {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
	return nil
}

// plainJSON marks the bytes encoding/json copies as they are inside a
// string: printable ASCII but the quote, the backslash and the three it
// escapes for HTML.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = !strings.ContainsRune(`"\<>&`, rune(c))
	}
	return t
}()
