package mirror

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// Where the API is mounted.
const (
	MirrorsPrefix   = "/api/v1/mirrors"
	UpstreamsPrefix = "/api/v1/upstreams"
	ParityPrefix    = "/api/v1/parity"
)

// Handler serves the mirror API under MirrorsPrefix, UpstreamsPrefix
// ("{kind}s" below) and ParityPrefix:
//
//	GET    /api/v1/{kind}s                       every mirror (upstream), by name
//	POST   /api/v1/{kind}s                       create: Settings → 201 View
//	GET    /api/v1/{kind}s/{id}                  one
//	PUT    /api/v1/{kind}s/{id}                  replace its settings (no credentials: keep them)
//	DELETE /api/v1/{kind}s/{id}                  forget it and its history (nothing is deleted on it)
//	POST   /api/v1/{kind}s/{id}/sync             start a sync → 202 {"run": ID}; body {"packs": [...]} optional
//	GET    /api/v1/{kind}s/{id}/runs             its runs, newest first (?before=ID&limit=N)
//	GET    /api/v1/{kind}s/{id}/runs/{run}       one run: state running|succeeded|failed, counts, errors
//	POST   /api/v1/parity                        check {"mirror": ID} (any remote), or every mirror: {"inParity", "reports"}
//	GET    /api/v1/parity?mirror=ID&status=S     the latest check of a remote (of every mirror without mirror=)
//	GET    /api/v1/parity/history?mirror=ID      its checks, newest first (?before=ID&limit=N)
//	GET    /api/v1/parity/{check}?status=S       one check
//
// Credentials given on create or update are stored and never shown: a
// View says only which kind it holds ("auth").
func (s *Service) Handler() http.Handler { return &handler{s: s} }

type handler struct{ s *Service }

func (h *handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	// No authentication yet: the actor of a change (in the audit trail) is
	// the client's address, as on /v2/.
	if registry.ActorFrom(req.Context()) == "anonymous" {
		req = req.WithContext(registry.WithActor(req.Context(), "anonymous@"+req.RemoteAddr))
	}
	if err := h.serve(w, req); err != nil {
		var in *InputError
		if errors.As(err, &in) {
			err = apierr.New(http.StatusBadRequest, apierr.BadRequest, "%s", in.Msg)
		}
		apierr.Write(w, req, h.s.log, err)
	}
}

func notFound() error { return apierr.New(http.StatusNotFound, apierr.NotFound, "no such endpoint") }

func methodNotAllowed(w http.ResponseWriter, req *http.Request, allow string) error {
	w.Header().Set("Allow", allow)
	return apierr.New(http.StatusMethodNotAllowed, apierr.MethodNotAllowed, "%s is not allowed here (allowed: %s)", req.Method, allow)
}

func (h *handler) serve(w http.ResponseWriter, req *http.Request) error {
	p := req.URL.Path
	if rest, ok := strings.CutPrefix(p, ParityPrefix); ok {
		return h.parity(w, req, rest)
	}
	kind, rest := storage.MirrorPush, ""
	switch {
	case strings.HasPrefix(p, MirrorsPrefix):
		rest = p[len(MirrorsPrefix):]
	case strings.HasPrefix(p, UpstreamsPrefix):
		kind, rest = storage.MirrorPull, p[len(UpstreamsPrefix):]
	default:
		return notFound()
	}
	segs := strings.Split(strings.Trim(rest, "/"), "/")
	if rest == "" || rest == "/" {
		segs = nil
	}
	ctx := req.Context()
	switch {
	case len(segs) == 0 && req.Method == http.MethodGet:
		items, err := h.s.List(ctx, kind)
		return reply(w, http.StatusOK, map[string]any{"items": items}, err)
	case len(segs) == 0 && req.Method == http.MethodPost:
		var set Settings
		if err := apierr.DecodeJSON(req.Body, &set, maxBody); err != nil {
			return err
		}
		v, err := h.s.Create(ctx, kind, set)
		if err == nil {
			w.Header().Set("Location", prefixOf(kind)+"/"+v.ID)
		}
		return reply(w, http.StatusCreated, v, err)
	case len(segs) == 0:
		return methodNotAllowed(w, req, "GET, POST")
	}
	id := segs[0]
	switch {
	case len(segs) == 1 && req.Method == http.MethodGet:
		v, err := h.s.Get(ctx, kind, id)
		return reply(w, http.StatusOK, v, err)
	case len(segs) == 1 && req.Method == http.MethodPut:
		var set Settings
		if err := apierr.DecodeJSON(req.Body, &set, maxBody); err != nil {
			return err
		}
		if _, err := h.s.Get(ctx, kind, id); err != nil {
			return err
		}
		v, err := h.s.Update(ctx, id, set)
		return reply(w, http.StatusOK, v, err)
	case len(segs) == 1 && req.Method == http.MethodDelete:
		if err := h.s.Delete(ctx, kind, id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	case len(segs) == 1:
		return methodNotAllowed(w, req, "GET, PUT, DELETE")
	case len(segs) == 2 && segs[1] == "sync":
		if req.Method != http.MethodPost {
			return methodNotAllowed(w, req, "POST")
		}
		var scope Scope
		if _, err := apierr.DecodeOptionalJSON(req.Body, &scope, maxBody); err != nil {
			return err
		}
		run, err := h.s.StartSync(ctx, kind, id, "api", scope)
		if err == nil {
			w.Header().Set("Location", prefixOf(kind)+"/"+id+"/runs/"+strconv.FormatInt(run, 10))
		}
		return reply(w, http.StatusAccepted, map[string]int64{"run": run}, err)
	case len(segs) == 2 && segs[1] == "runs":
		if req.Method != http.MethodGet {
			return methodNotAllowed(w, req, "GET")
		}
		before, limit, err := page(req)
		if err != nil {
			return err
		}
		items, err := h.s.Runs(ctx, kind, id, before, limit)
		return reply(w, http.StatusOK, map[string]any{"items": items}, err)
	case len(segs) == 3 && segs[1] == "runs":
		if req.Method != http.MethodGet {
			return methodNotAllowed(w, req, "GET")
		}
		run, err := strconv.ParseInt(segs[2], 10, 64)
		if err != nil {
			return notFound()
		}
		v, err := h.s.Run(ctx, kind, id, run)
		return reply(w, http.StatusOK, v, err)
	}
	return notFound()
}

func prefixOf(kind string) string {
	if kind == storage.MirrorPull {
		return UpstreamsPrefix
	}
	return MirrorsPrefix
}

// ParityResult answers POST /api/v1/parity.
type ParityResult struct {
	InParity bool           `json:"inParity"`
	Reports  []ParityReport `json:"reports"`
}

func (h *handler) parity(w http.ResponseWriter, req *http.Request, rest string) error {
	ctx := req.Context()
	q := req.URL.Query()
	status := q.Get("status")
	switch status {
	case "", InSync, OutOfSync, Missing, Extra, ReferrersIncomplete:
	default:
		return apierr.New(http.StatusBadRequest, apierr.BadRequest, "status %q: want in_sync, out_of_sync, missing, extra or referrers_incomplete", apierr.Clip(status))
	}
	switch rest = strings.Trim(rest, "/"); {
	case rest == "" && req.Method == http.MethodPost:
		var body struct {
			Mirror string `json:"mirror"`
		}
		if _, err := apierr.DecodeOptionalJSON(req.Body, &body, maxBody); err != nil {
			return err
		}
		ids, err := h.remoteIDs(req, body.Mirror)
		if err != nil {
			return err
		}
		res := ParityResult{InParity: true, Reports: []ParityReport{}}
		for _, id := range ids {
			rep, err := h.s.Parity(ctx, "", id)
			if err != nil {
				return err
			}
			res.InParity = res.InParity && rep.InParity
			res.Reports = append(res.Reports, *rep)
		}
		return reply(w, http.StatusOK, res, nil)
	case rest == "" && req.Method == http.MethodGet:
		ids, err := h.remoteIDs(req, q.Get("mirror"))
		if err != nil {
			return err
		}
		res := ParityResult{InParity: true, Reports: []ParityReport{}}
		for _, id := range ids {
			rep, err := h.s.LatestParity(ctx, "", id, status)
			if errors.Is(err, storage.ErrNotFound) && q.Get("mirror") == "" {
				continue // a mirror never checked
			}
			if err != nil {
				return err
			}
			res.InParity = res.InParity && rep.InParity
			res.Reports = append(res.Reports, *rep)
		}
		if q.Get("mirror") != "" {
			return reply(w, http.StatusOK, res.Reports[0], nil)
		}
		return reply(w, http.StatusOK, res, nil)
	case rest == "":
		return methodNotAllowed(w, req, "GET, POST")
	case req.Method != http.MethodGet:
		return methodNotAllowed(w, req, "GET")
	case rest == "history":
		before, limit, err := page(req)
		if err != nil {
			return err
		}
		if q.Get("mirror") == "" {
			return apierr.New(http.StatusBadRequest, apierr.BadRequest, "history needs mirror=ID")
		}
		items, err := h.s.ParityHistory(ctx, q.Get("mirror"), before, limit)
		return reply(w, http.StatusOK, map[string]any{"items": items}, err)
	}
	check, err := strconv.ParseInt(rest, 10, 64)
	if err != nil {
		return notFound()
	}
	rep, err := h.s.ParityCheck(ctx, check, status)
	return reply(w, http.StatusOK, rep, err)
}

// remoteIDs is the one remote asked for, or every mirror.
func (h *handler) remoteIDs(req *http.Request, id string) ([]string, error) {
	if id != "" {
		if _, err := h.s.Get(req.Context(), "", id); err != nil {
			return nil, err
		}
		return []string{id}, nil
	}
	list, err := h.s.List(req.Context(), storage.MirrorPush)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(list))
	for i, v := range list {
		ids[i] = v.ID
	}
	return ids, nil
}

// maxBody caps request bodies: settings are small documents.
const maxBody = 1 << 20

// page reads ?before=ID&limit=N (default 50, at most 500).
func page(req *http.Request) (int64, int, error) {
	q := req.URL.Query()
	var before int64
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, apierr.New(http.StatusBadRequest, apierr.BadRequest, "before %q: want a run or check id", apierr.Clip(b))
		}
		before = n
	}
	limit := 50
	if l := q.Get("limit"); l != "" {
		n, err := apierr.ParseLimit(l, 500)
		if err != nil {
			return 0, 0, err
		}
		limit = n
	}
	return before, limit, nil
}

func reply(w http.ResponseWriter, status int, v any, err error) error {
	if err != nil {
		return err
	}
	apierr.JSON(w, status, v)
	return nil
}
