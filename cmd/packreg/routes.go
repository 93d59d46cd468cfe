package main

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/internal/reqid"
	"github.com/packreg/packreg/internal/routes"
)

// The route table: every route packreg serves is a row registered here, on
// one gorilla/mux router (routes.NewRouter: paths matched as sent, never
// cleaned or redirected). The rows themselves are listed where their
// handlers live, one Routes function each:
//
//	registry.(*Registry).Routes   /v2/ (OCI distribution)
//	pack.(*Service).Routes        /api/v1/packs
//	audit.Routes                  /api/v1/audit
//	attest.(*Service).Routes      /api/v1/keys, /api/v1/trusted-roots, /api/v1/packs/{name}/versions/{version}/{signatures,attestations,verification}
//	mirror.(*Service).Routes      /api/v1/mirrors, /api/v1/upstreams, /api/v1/parity
//	bundle.(*Service).Routes      /api/v1/export, /api/v1/import, /api/v1/imports
//	compliance.(*Service).Routes  /api/v1/compliance
//	ui.(*UI).Routes               /ui/ (the dashboard; / sends browsers there)
//	serverRoutes (below)          /healthz, /readyz, /metrics, /api/v1/openapi.json
//	(*gate).tokenRoutes           /token (authentication on)
//	(*robotsAPI).routes           /api/v1/robots (authentication on)
//
// Every row declares its Access (routes.Access: admin only unless it
// says otherwise); with authentication on, authgate.go checks it.
//
// The registry's rows are also asked first through routes.Fast, which
// answers them as the router would without its regexps and request
// copies (routeTable; the router keeps them for Walk and the rest).
//
// `packreg routes`-style enumeration is mux's Walk (TestOpenAPIMatchesRoutes
// holds the OpenAPI document to it). A method a path does not have is a
// 405 in the path's own shape; a path no row has is a 404, in the OCI
// envelope except under /api/.

// ociRoutes is what the table needs of the registry.
type ociRoutes interface {
	Routes() []routes.Route
	NotFound() http.Handler
	NotAllowed(allow string) http.Handler
}

// maxRoutedPath bounds the paths matched against the table: a longer one
// is no route's (names are at most 255 bytes), and the templates' regexps
// never run on it. The registry refuses a long /v2/ path with NAME_INVALID.
const maxRoutedPath = 2048

// routeTable is the one router, and the /v2/ rows again in a
// routes.Fast that newHandler asks first: the same rows and answers
// without mux's regexps and request copies (nil when a row's template is
// not a shape Fast matches).
type routeTable struct {
	*mux.Router
	v2 *routes.Fast
}

// newRouteTable registers every row on one router. With authentication
// on (g not nil), every row is wrapped in the auth gate's check of its
// Access, and the token endpoint and the robots API are rows too.
func newRouteTable(oci ociRoutes, st *stores, draining *atomic.Bool, log *slog.Logger, apis, pages []routes.Route, g *gate, ob *observer) *routeTable {
	guard := func(rows []routes.Route) []routes.Route { return rows }
	if g != nil {
		guard = func(rows []routes.Route) []routes.Route { return routes.Guard(rows, g.guard) }
		apis = append(apis, (&robotsAPI{store: st.meta, log: log, now: time.Now}).routes()...)
	}
	r := routes.NewRouter()
	r.Use(routeLabel)
	v2 := guard(oci.Routes())
	// The OCI rows are registered first, so a path one of their templates
	// matches is theirs whatever its method (their 405 rows come before
	// any other batch): Fast answering those paths alone changes nothing.
	routes.Register(r, oci.NotAllowed, v2...)
	fast, err := routes.NewFast(oci.NotAllowed, v2...)
	if err != nil {
		log.Warn("the /v2/ rows are routed by regexps", "err", err)
	}
	routes.Register(r, apierr.NotAllowedHandler, guard(apis)...)
	routes.Register(r, apierr.NotAllowedHandler, routes.Get("/api/v1/openapi.json", openAPIHandler(log)).With(routes.Public))
	if g != nil {
		routes.Register(r, apierr.NotAllowedHandler, g.tokenRoutes()...)
	}
	routes.Register(r, textNotAllowed, serverRoutes(st, draining, log, ob)...)
	routes.Register(r, textNotAllowed, guard(pages)...)
	r.NotFoundHandler = notFoundHandler(oci.NotFound())
	return &routeTable{Router: r, v2: fast}
}

// newHandler wraps the table in the edge's checks (edge.go) and the
// request log.
func newHandler(table *routeTable, log *slog.Logger, edge edgeSettings, ob *observer) http.Handler {
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if len(req.URL.EscapedPath()) > maxRoutedPath {
			table.NotFoundHandler.ServeHTTP(w, req)
			return
		}
		if table.v2 != nil {
			if h, label, ok := table.v2.Route(req); ok {
				setRoute(w, label) // what routeLabel does for mux's rows
				h.ServeHTTP(w, req)
				return
			}
		}
		table.ServeHTTP(w, req)
	})
	return logRequests(hsts(edge.guard(h, log)), log, ob)
}

// notFoundHandler answers a path no row has, in the shape of its prefix.
func notFoundHandler(oci http.Handler) http.Handler {
	api := apierr.NotFoundHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, "/api/") {
			api.ServeHTTP(w, req)
			return
		}
		oci.ServeHTTP(w, req)
	})
}

// serverRoutes are the server's own endpoints: liveness and readiness, for
// load balancers and orchestrators, in plain text, and the metrics.
func serverRoutes(st *stores, draining *atomic.Bool, log *slog.Logger, ob *observer) []routes.Route {
	healthz := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	readyz := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "shutting down\n")
			return
		}
		if err := st.ping(req.Context()); err != nil {
			log.Warn("readiness check failed", "request_id", reqid.From(req.Context()), "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			reason := "storage"
			var ue *unreadyError
			if errors.As(err, &ue) {
				reason = ue.Store
			}
			io.WriteString(w, reason+" unavailable\n")
			return
		}
		io.WriteString(w, "ok\n")
	})
	rows := []routes.Route{
		routes.Get("/", http.HandlerFunc(root)).With(routes.Public),
		routes.Get("/healthz", healthz).With(routes.Public),
		routes.Head("/healthz", healthz).With(routes.Public),
		routes.Get("/readyz", readyz).With(routes.Public),
		routes.Head("/readyz", readyz).With(routes.Public),
	}
	if m := ob.metrics(); m != nil {
		// Public like the probes: a scraper has no token, and the families
		// carry route templates and counts, never a repository name.
		rows = append(rows, routes.Get("/metrics", m.Handler(log)).With(routes.Public))
	}
	return rows
}

// root sends a browser (Accept: text/html) to the dashboard, and tells an
// API client where the API is described.
func root(w http.ResponseWriter, req *http.Request) {
	if strings.Contains(req.Header.Get("Accept"), "text/html") {
		http.Redirect(w, req, "/ui/", http.StatusFound)
		return
	}
	apierr.JSON(w, http.StatusOK, map[string]string{"name": "packreg", "version": buildVersion(),
		"api": "/api/v1/openapi.json", "registry": "/v2/", "dashboard": "/ui/"})
}

// textNotAllowed is the 405 of the plain-text endpoints.
func textNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", allow)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusMethodNotAllowed)
		io.WriteString(w, "method not allowed\n")
	})
}
