package main

import (
	"log/slog"
	"mime"
	"net"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/packreg/packreg/bundle"
	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
)

// The HTTP edge: what every request passes before any route sees it.
// Browsers are hostile (DESIGN.md, security model), and packreg has no
// authentication yet, so a page open in a browser on the registry's machine
// must not be able to change anything:
//
//   - Host: while the server is anonymous on loopback, a request whose Host
//     is not localhost, a loopback address or one of server.hosts is
//     refused, whatever its method. A DNS-rebinding page is same-origin with
//     its own name, so only the name it uses gives it away.
//   - Cross-origin: a state-changing request (anything but GET, HEAD,
//     OPTIONS) a browser marks as cross-site (Sec-Fetch-Site, or an Origin
//     that is not the Host) is refused, on every route, /v2/ included.
//     Real OCI clients and packreg's CLI send neither header.
//   - Paths: outside /v2/ (whose registry refuses them with NAME_INVALID),
//     a path with an empty, "." or ".." component is refused with 400,
//     never redirected to its cleaned form.
//   - JSON: a state-changing /api/v1 request with a body must say
//     Content-Type: application/json (415 otherwise). A cross-site page can
//     only send text/plain, form and multipart bodies without a CORS
//     preflight, which packreg never grants. The two routes whose body is
//     not JSON, POST /api/v1/packs (multipart publish) and POST
//     /api/v1/import (a tar), are covered by the cross-origin check and
//     check their own content type. They are named here by path because
//     this check runs before routing; a third such route should make it a
//     property of the route row instead.
//
// Refusals take the shape of the route: the OCI envelope on /v2/ (and
// anything else the registry answers), the apierr shape on /api/.

// edgeSettings are the edge's knobs, from the config.
type edgeSettings struct {
	// checkHost: the server is anonymous on loopback, so Host is checked.
	checkHost bool
	// hosts are the extra host names accepted, lowercase.
	hosts []string
}

func newEdgeSettings(c Config) edgeSettings {
	host, _, _ := net.SplitHostPort(c.Addr)
	// The Host check guards what an anonymous caller may do. With
	// authentication on and no anonymous actions, a rebound page has no
	// credentials for this server and can do nothing; with anonymous
	// actions it could still use them, so the check stays.
	anonymous := !c.Auth.Enabled() || len(c.Auth.Anonymous) > 0
	e := edgeSettings{checkHost: isLoopback(host) && anonymous}
	for _, h := range c.Server.Hosts {
		e.hosts = append(e.hosts, strings.ToLower(h))
	}
	return e
}

// guard wraps next in the edge's checks.
func (e edgeSettings) guard(next http.Handler, log *slog.Logger) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if e.checkHost && !e.hostAllowed(req.Host) {
			edgeRefuse(w, req, log, oci.Errorf(oci.ErrDenied,
				"host %q is not served: this registry is anonymous on loopback and answers localhost, "+
					"loopback addresses and the names in server.hosts only (a DNS-rebinding guard)", apierr.Clip(req.Host)))
			return
		}
		if err := cop.Check(req); err != nil {
			edgeRefuse(w, req, log, oci.Errorf(oci.ErrDenied,
				"cross-origin %s refused: a browser page of another site cannot change this registry (%v)", req.Method, err))
			return
		}
		if p := req.URL.EscapedPath(); !underV2(p) && !cleanPath(p) {
			// The route table never cleans a path, so "/api/v1/packs/a/../b"
			// would reach a route with the name "a/../b": refuse it here,
			// where every API's paths are checked alike.
			apierr.Write(w, req, log, apierr.Bad("request path %q has an empty, \".\" or \"..\" component", apierr.Clip(p)))
			return
		}
		if err := checkJSONBody(req); err != nil {
			apierr.Write(w, req, log, err)
			return
		}
		next.ServeHTTP(w, req)
	})
}

// hostAllowed reports whether a Host header names this machine or a
// configured name. The port is not checked: only the name can be rebound.
func (e edgeSettings) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" {
		return false
	}
	return isLoopback(host) || slices.Contains(e.hosts, host)
}

// underV2 reports whether the registry answers p; it refuses unclean
// paths itself, with the OCI codes (NAME_INVALID).
func underV2(p string) bool { return p == "/v2" || strings.HasPrefix(p, "/v2/") }

// cleanPath reports whether p has no empty, "." or ".." component (a
// trailing slash is allowed): the paths http.ServeMux serves without a
// redirect.
func cleanPath(p string) bool {
	if p == "/" {
		return true
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") {
		c += "/"
	}
	return c == p
}

// checkJSONBody applies the JSON rule to /api/ requests.
func checkJSONBody(req *http.Request) error {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if !strings.HasPrefix(req.URL.Path, "/api/") || req.ContentLength == 0 {
		return nil // no body to misread
	}
	if req.Method == http.MethodPost && req.URL.Path == "/api/v1/packs" {
		return nil // publish is multipart/form-data; the pack API checks that
	}
	if req.Method == http.MethodPost && req.URL.Path == bundle.ImportPath {
		return nil // an import is a tar; the bundle API checks that
	}
	mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return apierr.New(http.StatusUnsupportedMediaType, apierr.UnsupportedMediaType,
			"%s %s wants Content-Type: application/json, got %q", req.Method, apierr.Clip(req.URL.Path),
			apierr.Clip(req.Header.Get("Content-Type")))
	}
	return nil
}

// edgeRefuse answers a refusal in the shape of the route.
func edgeRefuse(w http.ResponseWriter, req *http.Request, log *slog.Logger, err error) {
	if strings.HasPrefix(req.URL.Path, "/api/") {
		apierr.Write(w, req, log, err)
		return
	}
	registry.WriteError(w, req, err)
}
