package pack

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/semver"
	"github.com/packreg/packreg/storage"
)

// Prefix is where Handler is mounted.
const Prefix = "/api/v1/packs"

// Handler serves the packs REST API under Prefix:
//
//	POST /api/v1/packs                                        publish (multipart)
//	GET  /api/v1/packs?status=&name=&label=&limit=&cursor=    versions, newest first
//	GET  /api/v1/packs/{name}/versions                        every version, semver order
//	GET  /api/v1/packs/{name}/versions/{version}              one version
//	GET  /api/v1/packs/{name}/versions/{version}/manifest     manifest + resolved config
//	GET  /api/v1/packs/{name}/versions/{version}/lifecycle    history of a version
//	POST /api/v1/packs/{name}/versions/{version}/lifecycle    change its state
//	GET  /api/v1/packs/{name}/lifecycle                       history of every version
//	POST /api/v1/packs/{name}/lifecycle                       change every version
//	     /api/v1/packs/{name}/versions/{version}/{suffix}     a VersionExtension's
//
// Names contain slashes, so paths are matched from the end (like /v2/);
// "versions/{version}/lifecycle" wins over a pack whose name ends in
// "/versions/{version}".
func (s *Service) Handler() http.Handler { return &handler{s: s} }

type handler struct{ s *Service }

// route is a parsed path below Prefix.
type route struct {
	name, version string
	kind          string // "", "versions", "version", "manifest", "lifecycle", or an extension's suffix
}

func (h *handler) parseRoute(p string) (route, bool) {
	if p == "" || p == "/" {
		return route{}, true
	}
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	n := len(segs)
	join := func(k int) string { return strings.Join(segs[:k], "/") }
	last := segs[n-1]
	_, isExt := h.s.ext[last]
	switch {
	case n >= 4 && segs[n-3] == "versions" && (last == "manifest" || isExt || last == "lifecycle" && semver.Valid(segs[n-2])):
		return route{name: join(n - 3), version: segs[n-2], kind: last}, true
	case n >= 2 && (last == "lifecycle" || last == "versions"):
		return route{name: join(n - 1), kind: last}, true
	case n >= 3 && segs[n-2] == "versions":
		return route{name: join(n - 2), version: last, kind: "version"}, true
	}
	return route{}, false
}

func (h *handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	// No authentication yet: the actor is the client's address, as on /v2/.
	if registry.ActorFrom(ctx) == "anonymous" {
		req = req.WithContext(registry.WithActor(ctx, "anonymous@"+req.RemoteAddr))
	}
	if err := h.serve(w, req); err != nil {
		apierr.Write(w, req, h.s.log, err)
	}
}

func (h *handler) serve(w http.ResponseWriter, req *http.Request) error {
	rest, ok := strings.CutPrefix(req.URL.Path, Prefix)
	if !ok {
		return notFoundEndpoint()
	}
	rt, ok := h.parseRoute(rest)
	if !ok || rt.kind != "" && rt.name == "" {
		return notFoundEndpoint()
	}
	if rt.kind != "" {
		if err := checkName(rt.name); err != nil {
			return err
		}
	}
	ctx := req.Context()
	if x := h.s.ext[rt.kind]; x != nil && rt.version != "" {
		if err := checkVersion(rt.version); err != nil {
			return err
		}
		x.ServeVersion(w, req, rt.name, rt.version, rt.kind)
		return nil
	}
	switch {
	case rt.kind == "" && req.Method == http.MethodGet:
		q, err := listQuery(req.URL.RawQuery)
		if err != nil {
			return err
		}
		return reply(w)(h.s.List(ctx, q))
	case rt.kind == "" && req.Method == http.MethodPost:
		return h.publish(w, req)
	case rt.kind == "versions" && req.Method == http.MethodGet:
		return reply(w)(h.s.Versions(ctx, rt.name))
	case rt.kind == "version" && req.Method == http.MethodGet:
		return reply(w)(h.s.Version(ctx, rt.name, rt.version))
	case rt.kind == "manifest" && req.Method == http.MethodGet:
		return reply(w)(h.s.Manifest(ctx, rt.name, rt.version))
	case rt.kind == "lifecycle" && req.Method == http.MethodGet:
		return reply(w)(h.s.History(ctx, rt.name, rt.version))
	case rt.kind == "lifecycle" && req.Method == http.MethodPost:
		return h.lifecycle(w, req, rt)
	}
	allow := map[string]string{"": "GET, POST", "lifecycle": "GET, POST"}[rt.kind]
	if allow == "" {
		allow = "GET"
	}
	w.Header().Set("Allow", allow)
	return apierr.New(http.StatusMethodNotAllowed, apierr.MethodNotAllowed, "%s is not allowed here (allowed: %s)", req.Method, allow)
}

func notFoundEndpoint() error {
	return apierr.New(http.StatusNotFound, apierr.NotFound, "no such endpoint")
}

// reply writes a service result as 200 JSON, or returns its error:
// return reply(w)(h.s.Version(...)).
func reply(w http.ResponseWriter) func(any, error) error {
	return func(v any, err error) error {
		if err != nil {
			return err
		}
		apierr.JSON(w, http.StatusOK, v)
		return nil
	}
}

func (h *handler) publish(w http.ResponseWriter, req *http.Request) error {
	// The whole request is capped, with or without a pack size policy: it
	// bounds the disk a request can fill while its files are hashed.
	limit := h.s.maxPublish
	if max := h.s.policy.MaxPackSize; max > 0 {
		// Room for the metadata and the multipart framing of many files.
		limit = min(limit, max+maxMetadataSize+maxFiles*1024)
	}
	req.Body = http.MaxBytesReader(w, req.Body, limit)
	md, files, sp, err := h.s.readPublish(req)
	if err != nil {
		return err
	}
	defer sp.Close()
	v, created, err := h.s.Publish(req.Context(), md, files)
	if err != nil {
		return err
	}
	if err := h.s.report(req.Context(), v); err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	w.Header().Set("Location", Prefix+"/"+v.Name+"/versions/"+v.Version)
	apierr.JSON(w, status, v)
	return nil
}

func (h *handler) lifecycle(w http.ResponseWriter, req *http.Request, rt route) error {
	var r LifecycleRequest
	if err := apierr.DecodeJSON(req.Body, &r, maxMetadataSize); err != nil {
		return fmt.Errorf(`%w (want {"state":"active|deprecated|archived","reason":"...","force":false})`, err)
	}
	vs, err := h.s.SetLifecycle(req.Context(), rt.name, rt.version, r)
	if err != nil {
		return err
	}
	if rt.version != "" {
		apierr.JSON(w, http.StatusOK, vs[0])
		return nil
	}
	apierr.JSON(w, http.StatusOK, Versions{Name: rt.name, Versions: vs})
	return nil
}

// listQuery reads GET /api/v1/packs parameters. Unknown parameters are
// errors, so a typo does not silently list everything.
func listQuery(raw string) (storage.PackQuery, error) {
	q := storage.PackQuery{Status: storage.PackActive, Limit: DefaultLimit}
	params, err := apierr.Query(raw, "status", "name", "label", "limit", "cursor")
	if err != nil {
		return q, err
	}
	for k, val := range params {
		switch k {
		case "status":
			switch {
			case val == "all":
				q.Status = ""
			case validState(val), val == storage.PackDeleted:
				q.Status = val
			default:
				return q, apierr.Bad("status %q: want active, deprecated, archived, deleted or all", apierr.Clip(val))
			}
		case "name":
			if !namePrefix(val) {
				return q, apierr.Bad("name %q: want the start of a pack name (lowercase letters, digits, . _ - /)", apierr.Clip(val))
			}
			q.NamePrefix = val
		case "label":
			key, value, found := strings.Cut(val, "=")
			if !found {
				return q, apierr.Bad("label %q: want key=value", apierr.Clip(val))
			}
			if err := checkLabel(key, value); err != nil {
				return q, err
			}
			q.LabelKey, q.LabelValue = key, value
		case "limit":
			n, err := apierr.ParseLimit(val, MaxLimit)
			if err != nil {
				return q, err
			}
			q.Limit = n
		case "cursor":
			created, id, err := DecodeCursor(val)
			if err != nil {
				return q, err
			}
			q.BeforeCreated, q.BeforeID = created, id
		}
	}
	return q, nil
}

// namePrefix accepts what can start a repository name.
func namePrefix(p string) bool {
	if p == "" || len(p) > oci.MaxNameLen {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/') {
			return false
		}
	}
	return true
}
