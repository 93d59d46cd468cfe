package registry

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/packreg/packreg/internal/reqid"
	"github.com/packreg/packreg/internal/routes"
	"github.com/packreg/packreg/oci"
)

// handlerFunc is a handler that returns its error for writeError.
type handlerFunc func(w http.ResponseWriter, req *http.Request, rt route) error

// route is a matched /v2/ path.
type route struct {
	name string // repository
	ref  string // digest, reference or upload id (the last path component)
}

// Routes are the registry's rows of the route table (cmd/packreg/routes.go
// registers them next to the REST APIs'; ServeHTTP serves them alone).
//
// Repository names contain slashes, so {name} takes everything up to the
// resource literal and the last component is the reference: the template
// matches "from the end", and "a/blobs/b" is a name. Neither is checked by
// the template: endpoint refuses a bad name with NAME_INVALID (a template
// that refused it would answer 404), each handler its reference ({ref} may
// be empty, to be refused with the handler's own code). Paths are matched
// as the client sent them, escaped: an encoded slash stays inside its
// component, so "v1%2Fx" is a bad tag and "..%2Fx" a bad upload id, never
// another route.
func (r *Registry) Routes() []routes.Route {
	return []routes.Route{
		// The hot paths first: the first row that matches wins.
		routes.Get("/v2/{name:.+}/manifests/{ref:[^/]*}", r.reader(r.getManifest)).With(routes.CanPull),
		routes.Head("/v2/{name:.+}/manifests/{ref:[^/]*}", r.reader(r.getManifest)).With(routes.CanPull),
		routes.Put("/v2/{name:.+}/manifests/{ref:[^/]*}", r.endpoint(r.putManifest)).With(routes.CanPush),
		routes.Delete("/v2/{name:.+}/manifests/{ref:[^/]*}", r.deleter(r.deleteManifest)).With(routes.CanDelete),
		routes.Get("/v2/{name:.+}/blobs/{ref:[^/]*}", r.endpoint(r.getBlob)).With(routes.CanPull),
		routes.Head("/v2/{name:.+}/blobs/{ref:[^/]*}", r.endpoint(r.getBlob)).With(routes.CanPull),
		routes.Delete("/v2/{name:.+}/blobs/{ref:[^/]*}", r.deleter(r.deleteBlob)).With(routes.CanDelete),
		routes.Post("/v2/{name:.+}/blobs/uploads/", r.endpoint(r.startUpload)).With(routes.CanPush),
		routes.Get("/v2/{name:.+}/blobs/uploads/{ref}", r.endpoint(r.uploadStatus)).With(routes.CanPush),
		routes.Patch("/v2/{name:.+}/blobs/uploads/{ref}", r.endpoint(r.patchUpload)).With(routes.CanPush),
		routes.Put("/v2/{name:.+}/blobs/uploads/{ref}", r.endpoint(r.putUpload)).With(routes.CanPush),
		routes.Delete("/v2/{name:.+}/blobs/uploads/{ref}", r.deleter(r.cancelUpload)).With(routes.CanPush),
		routes.Get("/v2/{name:.+}/referrers/{ref:[^/]*}", r.endpoint(r.referrers)).With(routes.CanPull),
		routes.Get("/v2/{name:.+}/tags/list", r.reader(r.tagsList)).With(routes.CanPull),
		routes.Get("/v2/_catalog", r.endpoint(r.catalog)).With(routes.AnyCaller),
		routes.Get("/v2/", r.endpoint(r.base)).With(routes.Authenticated),
		routes.Head("/v2/", r.endpoint(r.base)).With(routes.Authenticated),
		routes.Get("/v2", r.endpoint(r.base)).With(routes.Authenticated),
		routes.Head("/v2", r.endpoint(r.base)).With(routes.Authenticated),
	}
}

// NotAllowed answers a method a /v2/ path does not have: 405 UNSUPPORTED,
// after the same checks of the path and name as its routes.
func (r *Registry) NotAllowed(allow string) http.Handler {
	return r.endpoint(func(w http.ResponseWriter, req *http.Request, _ route) error {
		w.Header().Set("Allow", allow)
		return oci.Errorf(oci.ErrUnsupported, "method %s not allowed here", req.Method)
	})
}

// NotFound answers a path no route matches, in the OCI envelope: 400
// NAME_INVALID for a path under /v2/ that is too long or has a dot
// component, else 404.
func (r *Registry) NotFound() http.Handler {
	return r.endpoint(func(http.ResponseWriter, *http.Request, route) error {
		return oci.Errorf(oci.ErrNameUnknown, "no such endpoint")
	})
}

// ServeHTTP serves the registry's routes alone, for tests and for a
// server without the REST APIs.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.handlerOnce.Do(func() { r.handler = routes.Handler(r.NotFound(), r.NotAllowed, r.Routes()...) })
	if len(req.URL.EscapedPath()) > len("/v2/")+maxPathLen {
		// No template's regexp runs on a path no route can have:
		// NotFound refuses it (NAME_INVALID), as cmd's table does.
		r.NotFound().ServeHTTP(w, req)
		return
	}
	r.handler.ServeHTTP(w, req)
}

// endpoint wraps a /v2/ handler in what every registry answer does first:
// the request id and actor, the API version header, and the refusal of a
// path that is too long or has a "." or ".." component (raw or encoded),
// and of a bad repository name, before anything reads storage.
func (r *Registry) endpoint(h handlerFunc) http.Handler { return r.wrap(h, true) }

// reader is endpoint for a route that changes nothing, so records no
// event and needs no actor in its context: WithRequestActor's string,
// context value and request copy were 5 of a manifest GET's 88
// allocations. The one change a manifest pull may cause, a pull-through
// fill, names its client itself (lookupManifest).
func (r *Registry) reader(h handlerFunc) http.Handler { return r.wrap(h, false) }

func (r *Registry) wrap(h handlerFunc, actor bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		req, _ = reqid.Accept(w, req)
		if actor {
			req = WithRequestActor(req)
		}
		w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
		if err := r.checkPath(req); err != nil {
			r.writeError(w, req, err)
			return
		}
		if err := h(w, req, route{name: req.PathValue("name"), ref: req.PathValue("ref")}); err != nil {
			r.writeError(w, req, err)
		}
	})
}

// deleter is endpoint for a DELETE, refused while deletion is disabled.
func (r *Registry) deleter(h handlerFunc) http.Handler {
	return r.endpoint(func(w http.ResponseWriter, req *http.Request, rt route) error {
		if !r.deleteEnabled {
			return oci.Errorf(oci.ErrUnsupported, "deletion is disabled on this registry")
		}
		return h(w, req, rt)
	})
}

// checkPath refuses what no /v2/ route may see: a path longer than any
// valid one, a dot component, a bad name.
func (r *Registry) checkPath(req *http.Request) error {
	p := req.URL.EscapedPath()
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return nil
	}
	if len(rest) > maxPathLen {
		return oci.Errorf(oci.ErrNameInvalid, "request path is longer than %d bytes", maxPathLen)
	}
	if dotComponent(rest) {
		return oci.Errorf(oci.ErrNameInvalid, "request path %q has a \".\" or \"..\" component", clip(p))
	}
	if name, ok := mayName(req); ok && !oci.ValidName(name) {
		return oci.Errorf(oci.ErrNameInvalid, "invalid repository name %q", clip(name))
	}
	return nil
}

// mayName is the {name} of the matched route, if it has one.
func mayName(req *http.Request) (string, bool) {
	name := req.PathValue("name")
	return name, name != ""
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

func (r *Registry) base(w http.ResponseWriter, req *http.Request, _ route) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	if req.Method == http.MethodGet {
		w.Write([]byte("{}"))
	}
	return nil
}
