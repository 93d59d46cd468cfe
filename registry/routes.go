package registry

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/packreg/packreg/internal/reqid"
	"github.com/packreg/packreg/oci"
)

// handlerFunc is a handler that returns its error for writeError.
type handlerFunc func(w http.ResponseWriter, req *http.Request, rt route) error

// route is a parsed /v2/ path.
type route struct {
	name string // repository
	ref  string // digest, reference or upload id (the last path component)
}

// ServeHTTP dispatches /v2/ requests. Repository names contain slashes, so
// paths are matched from the end: the last one or two components say which
// resource, everything before them is the name. The path is never cleaned,
// and it is matched as the client sent it (escaped): an encoded slash stays
// inside its component, so "v1%2Fx" is a bad tag and "..%2Fx" a bad upload
// id, never another route. "." and ".." components, raw or encoded, are
// refused before anything else.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	req, _ = reqid.Accept(w, req)
	req = req.WithContext(WithActor(req.Context(), requestActor(req)))
	w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")

	p := req.URL.EscapedPath()
	if p == "/v2" || p == "/v2/" {
		r.serve(w, req, route{}, methods{get: r.base, head: r.base})
		return
	}
	if p == "/v2/_catalog" {
		r.serve(w, req, route{}, methods{get: r.catalog})
		return
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		r.writeError(w, req, ociErr(http.StatusNotFound, codeNameUnknown, "no such endpoint"))
		return
	}
	if len(rest) > maxPathLen {
		r.writeError(w, req, ociErr(http.StatusBadRequest, codeNameInvalid, "request path is longer than %d bytes", maxPathLen))
		return
	}
	if dotComponent(rest) {
		r.writeError(w, req, ociErr(http.StatusBadRequest, codeNameInvalid,
			"request path %q has a \".\" or \"..\" component", clip(p)))
		return
	}
	rt, m, ok := r.match(rest)
	if !ok {
		r.writeError(w, req, ociErr(http.StatusNotFound, codeNameUnknown, "no such endpoint"))
		return
	}
	// EscapedPath is always validly encoded, so neither can fail.
	name, nerr := url.PathUnescape(rt.name)
	ref, rerr := url.PathUnescape(rt.ref)
	if nerr != nil || rerr != nil || !oci.ValidName(name) {
		r.writeError(w, req, ociErr(http.StatusBadRequest, codeNameInvalid,
			"invalid repository name %q", clip(name)))
		return
	}
	r.serve(w, req, route{name: name, ref: ref}, m)
}

// maxPathLen bounds the escaped path before it is split: a name is at most
// 255 bytes, and the rest of a route is a resource and a digest or id.
const maxPathLen = 4 * oci.MaxNameLen

// dotComponent reports whether an escaped path has a "." or ".." component,
// percent-encoded or not. Clients never send one; a cleaning proxy or mux
// would turn it into another repository's path.
func dotComponent(escaped string) bool {
	for c := range strings.SplitSeq(escaped, "/") {
		if len(c) > 6 {
			continue // longer than "%2e%2e": not a dot component
		}
		if u, err := url.PathUnescape(c); err == nil && (u == "." || u == "..") {
			return true
		}
	}
	return false
}

// methods maps HTTP methods of one resource to handlers; nil means 405.
type methods struct {
	get, head, put, post, patch, delete handlerFunc
}

// match splits "<name>/<resource...>" into the route and its handlers.
func (r *Registry) match(rest string) (route, methods, bool) {
	last := strings.LastIndexByte(rest, '/')
	if last < 0 {
		return route{}, methods{}, false
	}
	head, ref := rest[:last], rest[last+1:]
	prev := strings.LastIndexByte(head, '/')
	if prev < 0 {
		return route{}, methods{}, false
	}
	name, kind := head[:prev], head[prev+1:]
	switch kind {
	case "blobs":
		return route{name, ref}, methods{get: r.getBlob, head: r.getBlob, delete: r.deleteBlob}, true
	case "manifests":
		return route{name, ref}, methods{get: r.getManifest, head: r.getManifest, put: r.putManifest, delete: r.deleteManifest}, true
	case "referrers":
		return route{name, ref}, methods{get: r.referrers}, true
	case "tags":
		if ref == "list" {
			return route{name, ""}, methods{get: r.tagsList}, true
		}
	case "uploads":
		name, ok := strings.CutSuffix(name, "/blobs")
		if !ok {
			break
		}
		if ref == "" {
			return route{name, ""}, methods{post: r.startUpload}, true
		}
		return route{name, ref}, methods{get: r.uploadStatus, patch: r.patchUpload, put: r.putUpload, delete: r.cancelUpload}, true
	}
	return route{}, methods{}, false
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request, rt route, m methods) {
	var h handlerFunc
	switch req.Method {
	case http.MethodGet:
		h = m.get
	case http.MethodHead:
		h = m.head
	case http.MethodPut:
		h = m.put
	case http.MethodPost:
		h = m.post
	case http.MethodPatch:
		h = m.patch
	case http.MethodDelete:
		h = m.delete
		if h != nil && !r.deleteEnabled {
			r.writeError(w, req, ociErr(http.StatusMethodNotAllowed, codeUnsupported, "deletion is disabled on this registry"))
			return
		}
	}
	if h == nil {
		r.writeError(w, req, ociErr(http.StatusMethodNotAllowed, codeUnsupported, "method %s not allowed here", req.Method))
		return
	}
	if err := h(w, req, rt); err != nil {
		r.writeError(w, req, err)
	}
}

func (r *Registry) base(w http.ResponseWriter, req *http.Request, _ route) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	if req.Method == http.MethodGet {
		w.Write([]byte("{}"))
	}
	return nil
}
