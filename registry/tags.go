package registry

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
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
		setNext(w, req, n, items[n-1])
	}
	if items == nil {
		items = []string{}
	}
	return items, nil
}

// setNext links the page of n items after last.
func setNext(w http.ResponseWriter, req *http.Request, n int, last string) {
	q := url.Values{"n": {strconv.Itoa(n)}, "last": {last}}
	w.Header().Set("Link", "<"+req.URL.Path+"?"+q.Encode()+`>; rel="next"`)
}

func (r *Registry) tagsList(w http.ResponseWriter, req *http.Request, rt route) error {
	n, last, err := r.page(req)
	if err != nil {
		return err
	}
	ctx := req.Context()
	body, count, err := r.tagsPage(w, req, rt.name, n, last)
	if err != nil {
		return err
	}
	// A tag is always of a repository that exists (it points at a
	// manifest): only an empty page asks whether the name is known, a
	// query less for every other listing.
	if count == 0 {
		exists, err := r.meta.RepositoryExists(ctx, rt.name)
		if err != nil {
			return err
		}
		if !exists {
			return oci.Errorf(oci.ErrNameUnknown, "repository %s not known to the registry", rt.name)
		}
	}
	return writeBody(w, http.StatusOK, "application/json", body)
}

// tagsPage is the answer to a page of n tags of repo after last, and its
// number of tags. A store that joins the page (storage.TagsJoiner) has its
// names copied straight from the joined string into the answer.
func (r *Registry) tagsPage(w http.ResponseWriter, req *http.Request, repo string, n int, last string) ([]byte, int, error) {
	if tj, ok := r.meta.(storage.TagsJoiner); ok && n > 0 {
		if err := checkRepo(repo); err != nil {
			return nil, 0, err
		}
		joined, count, ok, err := tj.ListTagsJoined(req.Context(), repo, last, n+1)
		if err != nil {
			return nil, 0, err
		}
		if ok {
			if count > n { // n+1 names: the last one only says a next page exists
				joined, count = joined[:strings.LastIndex(joined, storage.TagSeparator)], n
				setNext(w, req, n, joined[strings.LastIndex(joined, storage.TagSeparator)+1:])
			}
			return joinedTagsJSON(repo, joined, count), count, nil
		}
	}
	tags, err := listPage(w, req, n, last, func(last string, n int) ([]string, error) {
		return r.Tags(req.Context(), repo, last, n)
	})
	if err != nil {
		return nil, 0, err
	}
	return tagsJSON(repo, tags), len(tags), nil
}

// tagsJSON is json.Marshal of the tags list answer ({"name","tags"}),
// byte for byte, without reflection: encoding/json was a tenth of a
// 1,000-tag listing's CPU. Names and tags the grammars allow need no
// escaping and are copied; any other string goes through json.Marshal.
func tagsJSON(name string, tags []string) []byte {
	size := 0
	for _, t := range tags {
		size += len(t) + 3 // quotes and comma
	}
	return appendTagsJSON(name, size, slices.Values(tags))
}

// joinedTagsJSON is tagsJSON of the count names in joined, separated by
// storage.TagSeparator.
func joinedTagsJSON(name, joined string, count int) []byte {
	if count == 0 {
		return tagsJSON(name, nil)
	}
	// Each separator becomes a comma; each name gains its quotes.
	return appendTagsJSON(name, len(joined)+2*count, strings.SplitSeq(joined, storage.TagSeparator))
}

// appendTagsJSON writes the answer into one buffer of its size, given
// tagsSize: the tags' length with their quotes and commas.
func appendTagsJSON(name string, tagsSize int, tags iter.Seq[string]) []byte {
	b := make([]byte, 0, len(`{"name":"","tags":[]}`)+len(name)+tagsSize)
	b = append(b, `{"name":`...)
	b = appendJSONString(b, name)
	b = append(b, `,"tags":[`...)
	sep := false
	for t := range tags {
		if sep {
			b = append(b, ',')
		}
		b, sep = appendJSONString(b, t), true
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
		setNext(w, req, n, resume)
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
