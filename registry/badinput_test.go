package registry_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
)

// TestBadNamesAndReferences covers the "Names, tags, digests" rows of
// shared/BAD_INPUTS.md with raw request paths.
func TestBadNamesAndReferences(t *testing.T) {
	h := newRegistry(t)
	good := "sha256:" + strings.Repeat("a", 64)
	long := strings.Repeat("a", 256)
	slashes := strings.Repeat("a/", 5000) + "a"
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/v2/a/../b/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/a/%2e%2e/b/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/Upper/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/a//b/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/a//tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/-a/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/a___b/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/" + long + "/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/" + slashes + "/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/" + long + "/blobs/" + good, 400, "NAME_INVALID"},
		{"GET", "/v2/a/manifests/v1:bad", 400, "DIGEST_INVALID"},
		{"GET", "/v2/a/manifests/-x", 400, "DIGEST_INVALID"},
		{"GET", "/v2/a/blobs/md5:" + strings.Repeat("a", 32), 400, "DIGEST_INVALID"},
		{"GET", "/v2/a/blobs/sha256:" + strings.Repeat("A", 64), 400, "DIGEST_INVALID"},
		{"GET", "/v2/a/blobs/sha256:" + strings.Repeat("a", 63), 400, "DIGEST_INVALID"},
		{"HEAD", "/v2/a/blobs/sha256:abc", 400, ""},
		{"GET", "/v2/a/referrers/sha256:nothex", 400, "DIGEST_INVALID"},
		{"GET", "/v2/a/blobs/" + good, 404, "BLOB_UNKNOWN"},
		{"GET", "/v2/a/manifests/" + good, 404, "MANIFEST_UNKNOWN"},
		{"GET", "/v2/a/manifests/latest", 404, "MANIFEST_UNKNOWN"},
		{"GET", "/v2/nope/tags/list", 404, "NAME_UNKNOWN"},
		{"POST", "/v2/a/manifests/latest", 405, "UNSUPPORTED"},
		{"GET", "/v2/nothing", 404, ""},
		// Dot components and empty ones anywhere in the path, raw or
		// encoded, on writes too: never another repository's path.
		{"PUT", "/v2/a/../b/manifests/t", 400, "NAME_INVALID"},
		{"POST", "/v2/a/./b/blobs/uploads/", 400, "NAME_INVALID"},
		{"DELETE", "/v2/a/%2E%2E/b/manifests/t", 400, "NAME_INVALID"},
		{"PUT", "/v2/a//manifests/t", 400, "NAME_INVALID"},
		{"POST", "/v2/a//blobs/uploads/", 400, "NAME_INVALID"},
		{"GET", "/v2/a/manifests/..", 400, "NAME_INVALID"},
		{"GET", "/v2/a/blobs/uploads/../../b/tags/list", 400, "NAME_INVALID"},
		// A reference is one path component: an encoded slash stays in it.
		{"GET", "/v2/a/manifests/v1%2Fx", 400, "DIGEST_INVALID"},
		{"GET", "/v2/a/blobs/sha256%3A" + strings.Repeat("a", 64), 404, "BLOB_UNKNOWN"},
		{"GET", "/v2/a%2Fb/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/a%2F..%2Fb/tags/list", 400, "NAME_INVALID"},
	} {
		t.Run(tc.method+" "+clipPath(tc.path), func(t *testing.T) {
			expect(t, do(t, h, tc.method, tc.path, nil), tc.status, tc.code)
		})
	}
}

func clipPath(p string) string {
	if len(p) > 60 {
		return p[:60] + "..."
	}
	return p
}

// TestEncodedSlashInName: "/" separates a name's components and "%2F" does
// not (RFC 3986 §2.2), so "a%2Fb" is a bad name, never repository a/b,
// which a proxy routing by path segments would not have seen; on reads
// and writes. Unreserved characters percent-encoded are the same URI
// (§2.3): "%61" is "a".
func TestEncodedSlashInName(t *testing.T) {
	h := newRegistry(t)
	m := imageManifest(t, h, "a/b", []byte("layer"))
	expect(t, putManifest(t, h, "a/b", "t", m, oci.MediaTypeImageManifest), 201, "")
	layer := sha([]byte("layer")).String()
	for _, name := range []string{"a%2Fb", "a%2fb", "%61%2F%62"} {
		for _, tc := range []struct{ method, tail string }{
			{"GET", "/manifests/t"},
			{"HEAD", "/manifests/t"},
			{"PUT", "/manifests/t2"},
			{"DELETE", "/manifests/" + sha(m).String()},
			{"GET", "/blobs/" + layer},
			{"DELETE", "/blobs/" + layer},
			{"POST", "/blobs/uploads/"},
			{"GET", "/tags/list"},
			{"GET", "/referrers/" + sha(m).String()},
		} {
			t.Run(tc.method+" "+name+tc.tail, func(t *testing.T) {
				var body []byte
				if tc.method == "PUT" {
					body = m
				}
				code := "NAME_INVALID"
				if tc.method == "HEAD" {
					code = "" // no body
				}
				expect(t, do(t, h, tc.method, "/v2/"+name+tc.tail, body, "Content-Type", oci.MediaTypeImageManifest), 400, code)
			})
		}
	}
	expect(t, do(t, h, "GET", "/v2/a/b/tags/list", nil), 200, "")
	if b := do(t, h, "GET", "/v2/a/b/tags/list", nil).Body.String(); strings.Contains(b, "t2") {
		t.Errorf("a/b got a tag from a%%2Fb: %s", b)
	}
	expect(t, do(t, h, "GET", "/v2/%61/%62/manifests/t", nil), 200, "")
}

func TestBadTagsOnPut(t *testing.T) {
	h := newRegistry(t)
	m := imageManifest(t, h, "r", []byte("layer"))
	for _, tag := range []string{"-x", strings.Repeat("t", 129)} {
		expect(t, putManifest(t, h, "r", tag, m, oci.MediaTypeImageManifest), 400, "MANIFEST_INVALID")
		expect(t, putManifest(t, h, "r", sha(m).String()+"?tag="+tag, m, oci.MediaTypeImageManifest), 400, "MANIFEST_INVALID")
	}
	expect(t, putManifest(t, h, "r", strings.Repeat("t", 128), m, oci.MediaTypeImageManifest), 201, "")
	// A tag is one path component: an encoded slash (or dot segment) in it
	// is a bad tag, not another route.
	for _, tag := range []string{"v1%2Fx", "v1%2F..%2F..%2Fx", "%2Fv1", "v1%2F"} {
		expect(t, putManifest(t, h, "r", tag, m, oci.MediaTypeImageManifest), 400, "MANIFEST_INVALID")
	}
	expect(t, do(t, h, "GET", "/v2/r/tags/list", nil), 200, "")
}

// TestBadManifests covers the "Manifests and referrers" rows.
func TestBadManifests(t *testing.T) {
	h := newRegistry(t)
	repo := "bad/manifests"
	layer := []byte("layer bytes")
	good := imageManifest(t, h, repo, layer)
	cfgD := pushBlob(t, h, repo, []byte(`{}`))
	layerD := sha(layer)
	missing := sha([]byte("never pushed"))
	mk := func(fields string) []byte {
		return []byte(`{"schemaVersion":2,"mediaType":"` + oci.MediaTypeImageManifest + `",` + fields + `}`)
	}
	cfg := fmt.Sprintf(`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2}`, cfgD)
	for _, tc := range []struct {
		name   string
		body   []byte
		ct     string
		ref    string
		status int
		code   string
	}{
		{"invalid json", []byte(`{"schemaVersion":2,`), oci.MediaTypeImageManifest, "t", 400, "MANIFEST_INVALID"},
		{"trailing garbage", append(append([]byte{}, good...), []byte(" garbage")...), oci.MediaTypeImageManifest, "t", 400, "MANIFEST_INVALID"},
		{"content-type mismatch", good, oci.MediaTypeImageIndex, "t", 400, "MANIFEST_INVALID"},
		{"unknown manifest media type", []byte(`{"schemaVersion":2,"mediaType":"application/x-mine","config":{}}`), "application/x-mine", "t", 400, "MANIFEST_INVALID"},
		{"schema1", []byte(`{"schemaVersion":1,"name":"x"}`), "application/vnd.docker.distribution.manifest.v1+json", "t", 400, "MANIFEST_INVALID"},
		{"both manifests and layers", mk(cfg + `,"layers":[],"manifests":[]`), oci.MediaTypeImageManifest, "t", 400, "MANIFEST_INVALID"},
		{"index with layers", []byte(`{"schemaVersion":2,"mediaType":"` + oci.MediaTypeImageIndex + `","manifests":[],"layers":[]}`), oci.MediaTypeImageIndex, "t", 400, "MANIFEST_INVALID"},
		{"missing layer blob", mk(cfg + fmt.Sprintf(`,"layers":[{"mediaType":"application/octet-stream","digest":"%s","size":3}]`, missing)), oci.MediaTypeImageManifest, "t", 400, "MANIFEST_BLOB_UNKNOWN"},
		{"missing config", mk(fmt.Sprintf(`"config":{"mediaType":"application/json","digest":"%s","size":3},"layers":[]`, missing)), oci.MediaTypeImageManifest, "t", 400, "MANIFEST_BLOB_UNKNOWN"},
		{"missing child manifest", []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":3}]}`, oci.MediaTypeImageIndex, oci.MediaTypeImageManifest, missing)), oci.MediaTypeImageIndex, "t", 400, "MANIFEST_BLOB_UNKNOWN"},
		{"wrong layer size", mk(cfg + fmt.Sprintf(`,"layers":[{"mediaType":"application/octet-stream","digest":"%s","size":%d}]`, layerD, len(layer)+1)), oci.MediaTypeImageManifest, "t", 400, "MANIFEST_INVALID"},
		{"negative size", mk(cfg + fmt.Sprintf(`,"layers":[{"mediaType":"application/octet-stream","digest":"%s","size":-1}]`, layerD)), oci.MediaTypeImageManifest, "t", 400, "MANIFEST_INVALID"},
		{"bad descriptor digest", mk(cfg + `,"layers":[{"mediaType":"application/octet-stream","digest":"sha256:xyz","size":1}]`), oci.MediaTypeImageManifest, "t", 400, "MANIFEST_INVALID"},
		{"malformed subject", mk(cfg + `,"layers":[],"subject":{"mediaType":"x","digest":"nope","size":1}`), oci.MediaTypeImageManifest, "t", 400, "MANIFEST_INVALID"},
		// What image-spec's types cannot read, no reader of stored manifests
		// (pack policy, signature parsing) should meet: data is base64, a
		// platform an object.
		{"descriptor data not base64", mk(cfg + fmt.Sprintf(`,"layers":[{"mediaType":"application/octet-stream","digest":"%s","size":%d,"data":"not base64!"}]`, layerD, len(layer))), oci.MediaTypeImageManifest, "t", 400, "MANIFEST_INVALID"},
		{"descriptor platform not an object", []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":3,"platform":"linux"}]}`, oci.MediaTypeImageIndex, oci.MediaTypeImageManifest, missing)), oci.MediaTypeImageIndex, "t", 400, "MANIFEST_INVALID"},
		{"platform key in another case", []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":3,"platform":{"os":"linux","OS":"plan9"}}]}`, oci.MediaTypeImageIndex, oci.MediaTypeImageManifest, missing)), oci.MediaTypeImageIndex, "t", 400, "MANIFEST_INVALID"},
		{"duplicate key", mk(cfg + `,"layers":[],"layers":[]`), oci.MediaTypeImageManifest, "t", 400, "MANIFEST_INVALID"},
		{"key in another case", mk(cfg + fmt.Sprintf(`,"layers":[{"mediaType":"application/octet-stream","digest":"%s","size":%d}],"LAYERS":[]`, layerD, len(layer))), oci.MediaTypeImageManifest, "t", 400, "MANIFEST_INVALID"},
		{"descriptor key in another case", mk(cfg + fmt.Sprintf(`,"layers":[{"mediaType":"application/octet-stream","digest":"%s","Digest":"%s","size":%d}]`, missing, layerD, len(layer))), oci.MediaTypeImageManifest, "t", 400, "MANIFEST_INVALID"},
		{"put by wrong digest", good, oci.MediaTypeImageManifest, sha([]byte("other")).String(), 400, "DIGEST_INVALID"},
		{"put by bad digest", good, oci.MediaTypeImageManifest, "sha256:bad", 400, "DIGEST_INVALID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, putManifest(t, h, repo, tc.ref, tc.body, tc.ct), tc.status, tc.code)
			// Nothing was stored: the tag still does not exist.
			expect(t, do(t, h, "GET", "/v2/"+repo+"/manifests/t", nil), 404, "MANIFEST_UNKNOWN")
		})
	}
	t.Run("over 4 MiB", func(t *testing.T) {
		big := make([]byte, 4<<20+1)
		expect(t, putManifest(t, h, repo, "t", big, oci.MediaTypeImageManifest), 413, "MANIFEST_INVALID")
	})
	t.Run("too many descriptors", func(t *testing.T) {
		var sb strings.Builder
		sb.WriteString(`{"schemaVersion":2,"mediaType":"` + oci.MediaTypeImageIndex + `","manifests":[`)
		for i := range 100000 {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"mediaType":"a","digest":"%s","size":1}`, missing)
		}
		sb.WriteString(`]}`)
		body := []byte(sb.String())
		w := putManifest(t, h, repo, "t", body, oci.MediaTypeImageIndex)
		if w.Code != 400 && w.Code != 413 {
			t.Fatalf("status %d, want 400 or 413", w.Code)
		}
	})
	t.Run("deep nesting", func(t *testing.T) {
		body := []byte(`{"schemaVersion":2,"annotations":` + strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat(`}`, 20000) + `}`)
		expect(t, putManifest(t, h, repo, "t", body, oci.MediaTypeImageManifest), 400, "MANIFEST_INVALID")
	})
	t.Run("content type from body when header absent", func(t *testing.T) {
		expect(t, do(t, h, "PUT", "/v2/"+repo+"/manifests/ok", good), 201, "")
	})
}

// TestBadUploads covers the "Uploads" rows that need no network tricks
// (client hang-ups are in the conformance kill tests).
func TestBadUploads(t *testing.T) {
	h := newRegistry(t, registry.WithMaxBlobSize(1<<20))
	repo := "up/loads"
	start := func(t *testing.T) string {
		t.Helper()
		w := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/", nil)
		expect(t, w, 202, "")
		loc := w.Header().Get("Location")
		if !strings.HasPrefix(loc, "/v2/"+repo+"/blobs/uploads/") {
			t.Fatalf("Location %q", loc)
		}
		return loc
	}
	t.Run("digest mismatch stores nothing", func(t *testing.T) {
		loc := start(t)
		claimed := sha([]byte("claimed"))
		body := []byte("actual")
		expect(t, do(t, h, "PUT", loc+"?digest="+claimed.String(), body), 400, "DIGEST_INVALID")
		expect(t, do(t, h, "HEAD", "/v2/"+repo+"/blobs/"+claimed.String(), nil), 404, "")
		expect(t, do(t, h, "HEAD", "/v2/"+repo+"/blobs/"+sha(body).String(), nil), 404, "")
		expect(t, do(t, h, "GET", loc, nil), 404, "BLOB_UPLOAD_UNKNOWN")
	})
	t.Run("monolithic post digest mismatch", func(t *testing.T) {
		claimed := sha([]byte("x"))
		expect(t, do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+claimed.String(), []byte("y")), 400, "DIGEST_INVALID")
		expect(t, do(t, h, "HEAD", "/v2/"+repo+"/blobs/"+claimed.String(), nil), 404, "")
	})
	t.Run("monolithic post over the size cap", func(t *testing.T) {
		big := bytes.Repeat([]byte("z"), 1<<20+1)
		expect(t, do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+sha(big).String(), big), 413, "SIZE_INVALID")
		// Without a Content-Length the cap is found while streaming.
		req := httptest.NewRequest("POST", "/v2/"+repo+"/blobs/uploads/?digest="+sha(big).String(), io.MultiReader(bytes.NewReader(big)))
		req.ContentLength = -1
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		expect(t, w, 413, "SIZE_INVALID")
		expect(t, do(t, h, "HEAD", "/v2/"+repo+"/blobs/"+sha(big).String(), nil), 404, "")
	})
	t.Run("out of order chunk", func(t *testing.T) {
		loc := start(t)
		expect(t, do(t, h, "PATCH", loc, []byte("abcd"), "Content-Range", "0-3"), 202, "")
		w := do(t, h, "PATCH", loc, []byte("efgh"), "Content-Range", "8-11")
		expect(t, w, 416, "")
		if w.Header().Get("Range") != "0-3" || w.Header().Get("Location") == "" {
			t.Fatalf("416 headers: %v", w.Header())
		}
		w = do(t, h, "PATCH", loc, []byte("efgh"), "Content-Range", "4-7")
		expect(t, w, 202, "")
		if w.Header().Get("Range") != "0-7" {
			t.Fatalf("Range %q", w.Header().Get("Range"))
		}
		d := sha([]byte("abcdefgh"))
		expect(t, do(t, h, "PUT", loc+"?digest="+d.String(), nil), 201, "")
		w = do(t, h, "GET", "/v2/"+repo+"/blobs/"+d.String(), nil)
		expect(t, w, 200, "")
		if w.Body.String() != "abcdefgh" {
			t.Fatalf("body %q", w.Body.String())
		}
	})
	t.Run("content range syntax and semantics", func(t *testing.T) {
		loc := start(t)
		expect(t, do(t, h, "PATCH", loc, []byte("ab"), "Content-Range", "zero-one"), 400, "BLOB_UPLOAD_INVALID")
		expect(t, do(t, h, "PATCH", loc, []byte("ab"), "Content-Range", "1-0"), 416, "")
		expect(t, do(t, h, "PATCH", loc, []byte("ab"), "Content-Range", "0-5"), 400, "SIZE_INVALID")
		for _, cr := range []string{"+0-+1", "0-1/abc", "bytes 0-1/", "bytes 0-1/1"} {
			expect(t, do(t, h, "PATCH", loc, []byte("ab"), "Content-Range", cr), 400, "BLOB_UPLOAD_INVALID")
		}
		expect(t, do(t, h, "PATCH", loc, []byte("ab"), "Content-Range", "0-1/*"), 202, "")
	})
	t.Run("final put without digest", func(t *testing.T) {
		loc := start(t)
		expect(t, do(t, h, "PUT", loc, []byte("x")), 400, "DIGEST_INVALID")
	})
	t.Run("unknown upload ids", func(t *testing.T) {
		loc := start(t)
		id := loc[strings.LastIndexByte(loc, '/')+1:]
		for _, p := range []string{
			"/v2/" + repo + "/blobs/uploads/not-a-uuid",
			"/v2/" + repo + "/blobs/uploads/00000000-0000-4000-8000-000000000000",
			"/v2/other/repo/blobs/uploads/" + id, // bound to its repository
			"/v2/" + repo + "/blobs/uploads/..%2F..%2Fx",
			"/v2/" + repo + "/blobs/uploads/..%2F..%2F" + id,
			"/v2/" + repo + "/blobs/uploads/" + id + "%2F",
			"/v2/" + repo + "/blobs/uploads/%2e%2e%2fsecret",
		} {
			expect(t, do(t, h, "GET", p, nil), 404, "BLOB_UPLOAD_UNKNOWN")
			expect(t, do(t, h, "PATCH", p, []byte("x")), 404, "BLOB_UPLOAD_UNKNOWN")
		}
	})
	t.Run("over the maximum size", func(t *testing.T) {
		loc := start(t)
		big := make([]byte, 1<<20+1)
		expect(t, do(t, h, "PATCH", loc, big), 413, "SIZE_INVALID")
		expect(t, do(t, h, "GET", loc, nil), 404, "BLOB_UPLOAD_UNKNOWN")
	})
	t.Run("mount from a repository without the blob", func(t *testing.T) {
		d := pushBlob(t, h, "mount/src", []byte("mountable"))
		w := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/?mount="+d.String()+"&from=elsewhere", nil)
		expect(t, w, 202, "")
		w = do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/?mount="+sha([]byte("nowhere")).String()+"&from=mount/src", nil)
		expect(t, w, 202, "")
		w = do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/?mount="+d.String()+"&from=mount/src", nil)
		expect(t, w, 201, "")
		expect(t, do(t, h, "HEAD", "/v2/"+repo+"/blobs/"+d.String(), nil), 200, "")
	})
	t.Run("anonymous mount", func(t *testing.T) {
		d := pushBlob(t, h, "mount/anon", []byte("anon"))
		expect(t, do(t, h, "POST", "/v2/another/blobs/uploads/?mount="+d.String(), nil), 201, "")
	})
	t.Run("empty and {} blobs", func(t *testing.T) {
		for _, b := range [][]byte{{}, []byte("{}")} {
			d := pushBlob(t, h, repo, b)
			w := do(t, h, "GET", "/v2/"+repo+"/blobs/"+d.String(), nil)
			expect(t, w, 200, "")
			if w.Body.String() != string(b) || w.Header().Get("Docker-Content-Digest") != d.String() {
				t.Fatalf("got %q %v", w.Body.String(), w.Header())
			}
		}
	})
	t.Run("ranges", func(t *testing.T) {
		d := pushBlob(t, h, repo, []byte("0123456789"))
		for _, tc := range []struct {
			rng, body, cr string
			status        int
		}{
			{"bytes=2-4", "234", "bytes 2-4/10", 206},
			{"bytes=7-", "789", "bytes 7-9/10", 206},
			{"bytes=-2", "89", "bytes 8-9/10", 206},
			{"bytes=5-100", "56789", "bytes 5-9/10", 206},
			{"bytes=10-", "", "bytes */10", 416},
			{"bytes=4-2", "", "bytes */10", 416},
			{"items=1-2", "0123456789", "", 200}, // an unknown unit is ignored (RFC 9110 14.2)
			{"bytes=0-1,4-5", "0123456789", "", 200},
			{"BYTES=2-4", "234", "bytes 2-4/10", 206},
			{"bytes=5-99999999999999999999", "56789", "bytes 5-9/10", 206},
			{"bytes=+1-+2", "", "bytes */10", 416},
		} {
			w := do(t, h, "GET", "/v2/"+repo+"/blobs/"+d.String(), nil, "Range", tc.rng)
			if w.Code != tc.status || w.Header().Get("Content-Range") != tc.cr || (tc.status != 416 && w.Body.String() != tc.body) {
				t.Errorf("Range %s: %d %q %q", tc.rng, w.Code, w.Header().Get("Content-Range"), w.Body.String())
			}
		}
	})
}

func TestDeleteDisabled(t *testing.T) {
	h := newRegistry(t, registry.WithDeleteEnabled(false))
	d := pushBlob(t, h, "r", []byte("x"))
	expect(t, do(t, h, "DELETE", "/v2/r/blobs/"+d.String(), nil), 405, "UNSUPPORTED")
	expect(t, do(t, h, "DELETE", "/v2/r/manifests/latest", nil), 405, "UNSUPPORTED")
	expect(t, do(t, h, "HEAD", "/v2/r/blobs/"+d.String(), nil), 200, "")
}

// cutBody delivers some bytes, then fails the way net/http's request body
// does when the client hangs up before Content-Length.
type cutBody struct{ data []byte }

func (c *cutBody) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, c.data)
	c.data = c.data[n:]
	return n, nil
}

// TestBodyCutShort: a PATCH or final PUT whose client hangs up commits
// nothing and leaves the session at its last acknowledged offset.
func TestBodyCutShort(t *testing.T) {
	h := newRegistry(t)
	repo := "cut/short"
	w := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/", nil)
	loc := w.Header().Get("Location")
	expect(t, do(t, h, "PATCH", loc, []byte("acked ")), 202, "")
	send := func(method, target string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, &cutBody{data: []byte("lost bytes")})
		req.ContentLength = 100 // more than the body delivers
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	full := []byte("acked final")
	for _, tc := range []struct{ method, target string }{
		{"PATCH", loc},
		{"PUT", loc + "?digest=" + sha(full).String()},
	} {
		expect(t, send(tc.method, tc.target), 400, "BLOB_UPLOAD_INVALID")
		w := do(t, h, "GET", loc, nil)
		expect(t, w, 204, "")
		if got := w.Header().Get("Range"); got != "0-5" {
			t.Fatalf("after a cut %s the upload is at %q, want 0-5", tc.method, got)
		}
	}
	expect(t, do(t, h, "HEAD", "/v2/"+repo+"/blobs/"+sha(full).String(), nil), 404, "")
	expect(t, do(t, h, "PUT", loc+"?digest="+sha(full).String(), []byte("final")), 201, "")
	w = do(t, h, "GET", "/v2/"+repo+"/blobs/"+sha(full).String(), nil)
	if w.Body.String() != string(full) {
		t.Fatalf("blob %q", w.Body.String())
	}
}

// TestIndexDepth: indexes nest at most 8 levels deep (an index of image
// manifests is level 1). Level 9 is 400 MANIFEST_INVALID, whichever index
// type, and an index takes the depth of its deepest child.
func TestIndexDepth(t *testing.T) {
	h := newRegistry(t)
	repo := "deep/index"
	img := imageManifest(t, h, repo, []byte("leaf"))
	expect(t, putManifest(t, h, repo, "leaf", img, oci.MediaTypeImageManifest), 201, "")
	index := func(mt string, children ...[]byte) []byte {
		var ds []oci.Descriptor
		for _, c := range children {
			var doc struct{ MediaType string }
			json.Unmarshal(c, &doc)
			ds = append(ds, desc(doc.MediaType, sha(c), int64(len(c))))
		}
		return mustJSON(map[string]any{"schemaVersion": 2, "mediaType": mt, "manifests": ds})
	}
	levels := [][]byte{img}
	for level := 1; level <= 20; level++ {
		mt := oci.MediaTypeImageIndex
		if level%2 == 0 {
			mt = oci.MediaTypeDockerManifestList
		}
		// Each level also lists the image, so only the deepest child counts.
		b := index(mt, levels[level-1], img)
		w := putManifest(t, h, repo, fmt.Sprint("l", level), b, mt)
		switch {
		case level <= 8:
			expect(t, w, 201, "")
		case level == 9:
			expect(t, w, 400, "MANIFEST_INVALID")
			if !strings.Contains(w.Body.String(), "8") {
				t.Fatalf("the refusal does not say the limit: %s", w.Body.String())
			}
			expect(t, putManifest(t, h, repo, sha(b).String(), b, mt), 400, "MANIFEST_INVALID")
		default:
			if w.Code != 400 {
				t.Fatalf("level %d: %d %s", level, w.Code, w.Body.String())
			}
		}
		levels = append(levels, b)
	}
	expect(t, do(t, h, "GET", "/v2/"+repo+"/manifests/l9", nil), 404, "MANIFEST_UNKNOWN")
	// A wide, shallow index is fine; so is one over level 7 and level 1.
	expect(t, putManifest(t, h, repo, "wide", index(oci.MediaTypeImageIndex, levels[1], levels[7], img), oci.MediaTypeImageIndex), 201, "")
	expect(t, putManifest(t, h, repo, "over8", index(oci.MediaTypeImageIndex, img, levels[8]), oci.MediaTypeImageIndex), 400, "MANIFEST_INVALID")
}
