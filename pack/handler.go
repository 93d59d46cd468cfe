package pack

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/internal/routes"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// Prefix is the root of the packs REST API.
const Prefix = "/api/v1/packs"

// Routes are the packs REST API's rows of the route table:
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
//
// (attest serves the signatures, attestations and verification of a
// version below the same path.) Names contain slashes, so the templates
// match from the end; "versions/{version}/lifecycle" wins over a pack whose
// name ends in "/versions/{version}" only when {version} is shaped like a
// version, as the first row that matches wins.
func (s *Service) Routes() []routes.Route {
	return []routes.Route{
		routes.Get("/api/v1/packs", s.api(s.list)).With(routes.AnyCaller),
		routes.Post("/api/v1/packs", s.api(s.publish)).With(routes.AnyCaller),
		routes.Get("/api/v1/packs/{name:.+}/versions/{version}/manifest", s.api(s.manifest)).With(routes.CanPull),
		routes.Get("/api/v1/packs/{name:.+}/versions/{version:"+versionShape+"}/lifecycle", s.api(s.history)).With(routes.CanPull),
		routes.Post("/api/v1/packs/{name:.+}/versions/{version:"+versionShape+"}/lifecycle", s.api(s.lifecycle)).With(routes.CanLifecycle),
		routes.Get("/api/v1/packs/{name:.+}/versions/{version}", s.api(s.version)).With(routes.CanPull),
		routes.Get("/api/v1/packs/{name:.+}/versions", s.api(s.versions)).With(routes.CanPull),
		routes.Get("/api/v1/packs/{name:.+}/lifecycle", s.api(s.history)).With(routes.CanPull),
		routes.Post("/api/v1/packs/{name:.+}/lifecycle", s.api(s.lifecycle)).With(routes.CanLifecycle),
	}
}

// versionShape is what a SemVer 2.0.0 version looks like (checkVersion
// is exact): enough to tell a version's lifecycle from the lifecycle of a
// pack named ".../versions/x".
const versionShape = `[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.+-]*)?`

// Handler serves Routes alone, for tests and a server with this API only.
func (s *Service) Handler() http.Handler {
	return routes.Handler(apierr.NotFoundHandler(), apierr.NotAllowedHandler, s.Routes()...)
}

// api adapts a handler of this API: the actor is the client's (for the
// audit trail), the name and version of the path are checked before
// anything reads the store, and errors are answered by apierr.
func (s *Service) api(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return apierr.Handler(s.log, func(w http.ResponseWriter, req *http.Request) error {
		if name := req.PathValue("name"); name != "" {
			if err := checkName(name); err != nil {
				return err
			}
		}
		return h(w, registry.WithRequestActor(req))
	})
}

func (s *Service) list(w http.ResponseWriter, req *http.Request) error {
	q, err := listQuery(req.URL.RawQuery)
	if err != nil {
		return err
	}
	return apierr.Reply(w, http.StatusOK)(s.List(req.Context(), q))
}

func (s *Service) versions(w http.ResponseWriter, req *http.Request) error {
	return apierr.Reply(w, http.StatusOK)(s.Versions(req.Context(), req.PathValue("name")))
}

func (s *Service) version(w http.ResponseWriter, req *http.Request) error {
	return apierr.Reply(w, http.StatusOK)(s.Version(req.Context(), req.PathValue("name"), req.PathValue("version")))
}

func (s *Service) manifest(w http.ResponseWriter, req *http.Request) error {
	return apierr.Reply(w, http.StatusOK)(s.Manifest(req.Context(), req.PathValue("name"), req.PathValue("version")))
}

// history is the lifecycle history of a version, or of every version.
func (s *Service) history(w http.ResponseWriter, req *http.Request) error {
	return apierr.Reply(w, http.StatusOK)(s.History(req.Context(), req.PathValue("name"), req.PathValue("version")))
}

func (s *Service) publish(w http.ResponseWriter, req *http.Request) error {
	// The whole request is capped, with or without a pack size policy: it
	// bounds the disk a request can fill while its files are hashed.
	limit := s.maxPublish
	if max := s.policy.MaxPackSize; max > 0 {
		// Room for the metadata and the multipart framing of many files.
		limit = min(limit, max+maxMetadataSize+maxFiles*1024)
	}
	req.Body = http.MaxBytesReader(w, req.Body, limit)
	md, files, sp, err := s.readPublish(req)
	if err != nil {
		return err
	}
	defer sp.Close()
	v, created, err := s.Publish(req.Context(), md, files)
	if err != nil {
		return err
	}
	if err := s.report(req.Context(), v); err != nil {
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

// lifecycle changes the state of a version, or of every version.
func (s *Service) lifecycle(w http.ResponseWriter, req *http.Request) error {
	name, version := req.PathValue("name"), req.PathValue("version")
	var r LifecycleRequest
	if err := apierr.DecodeJSON(req.Body, &r, maxMetadataSize); err != nil {
		return fmt.Errorf(`%w (want {"state":"active|deprecated|archived","reason":"...","force":false})`, err)
	}
	vs, err := s.SetLifecycle(req.Context(), name, version, r)
	if err != nil {
		return err
	}
	if version != "" {
		apierr.JSON(w, http.StatusOK, vs[0])
		return nil
	}
	apierr.JSON(w, http.StatusOK, Versions{Name: name, Versions: vs})
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
