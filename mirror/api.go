package mirror

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/internal/routes"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// Where the API is mounted.
const (
	MirrorsPrefix   = "/api/v1/mirrors"
	UpstreamsPrefix = "/api/v1/upstreams"
	ParityPrefix    = "/api/v1/parity"
)

// Routes are the mirror API's rows of the route table, the same for
// mirrors and upstreams ("{kind}s" below):
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
func (s *Service) Routes() []routes.Route {
	h := &handler{s: s}
	var rows []routes.Route
	for _, kind := range []string{storage.MirrorPush, storage.MirrorPull} {
		p := prefixOf(kind)
		rows = append(rows,
			routes.Get(p, h.api(kind, h.list)),
			routes.Post(p, h.api(kind, h.create)),
			routes.Get(p+"/{id}", h.api(kind, h.get)),
			routes.Put(p+"/{id}", h.api(kind, h.update)),
			routes.Delete(p+"/{id}", h.api(kind, h.delete)),
			routes.Post(p+"/{id}/sync", h.api(kind, h.sync)),
			routes.Get(p+"/{id}/runs", h.api(kind, h.runs)),
			routes.Get(p+"/{id}/runs/{run:[0-9]+}", h.api(kind, h.run)),
		)
	}
	return append(rows,
		routes.Post(ParityPrefix, h.api("", h.checkParity)),
		routes.Get(ParityPrefix, h.api("", h.latestParity)),
		routes.Get(ParityPrefix+"/history", h.api("", h.parityHistory)),
		routes.Get(ParityPrefix+"/{check:[0-9]+}", h.api("", h.parityCheck)),
	)
}

// Handler serves Routes alone, for tests and a server with this API only.
func (s *Service) Handler() http.Handler {
	return routes.Handler(apierr.NotFoundHandler(), apierr.NotAllowedHandler, s.Routes()...)
}

type handler struct{ s *Service }

// api adapts a handler of the mirror API for remotes of kind: the actor
// of a change (in the audit trail) is the client's, input errors are 400s,
// and apierr answers the rest.
func (h *handler) api(kind string, f func(w http.ResponseWriter, req *http.Request, kind string) error) http.Handler {
	return apierr.Handler(h.s.log, func(w http.ResponseWriter, req *http.Request) error {
		err := f(w, registry.WithRequestActor(req), kind)
		var in *InputError
		if errors.As(err, &in) {
			err = apierr.New(http.StatusBadRequest, apierr.BadRequest, "%s", in.Msg)
		}
		return err
	})
}

func (h *handler) list(w http.ResponseWriter, req *http.Request, kind string) error {
	items, err := h.s.List(req.Context(), kind)
	return apierr.Reply(w, http.StatusOK)(map[string]any{"items": items}, err)
}

func (h *handler) create(w http.ResponseWriter, req *http.Request, kind string) error {
	var set Settings
	if err := apierr.DecodeJSON(req.Body, &set, maxBody); err != nil {
		return err
	}
	v, err := h.s.Create(req.Context(), kind, set)
	if err == nil {
		w.Header().Set("Location", prefixOf(kind)+"/"+v.ID)
	}
	return apierr.Reply(w, http.StatusCreated)(v, err)
}

func (h *handler) get(w http.ResponseWriter, req *http.Request, kind string) error {
	return apierr.Reply(w, http.StatusOK)(h.s.Get(req.Context(), kind, req.PathValue("id")))
}

func (h *handler) update(w http.ResponseWriter, req *http.Request, kind string) error {
	var set Settings
	if err := apierr.DecodeJSON(req.Body, &set, maxBody); err != nil {
		return err
	}
	id := req.PathValue("id")
	if _, err := h.s.Get(req.Context(), kind, id); err != nil {
		return err
	}
	return apierr.Reply(w, http.StatusOK)(h.s.Update(req.Context(), id, set))
}

func (h *handler) delete(w http.ResponseWriter, req *http.Request, kind string) error {
	if err := h.s.Delete(req.Context(), kind, req.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) sync(w http.ResponseWriter, req *http.Request, kind string) error {
	var scope Scope
	if _, err := apierr.DecodeOptionalJSON(req.Body, &scope, maxBody); err != nil {
		return err
	}
	id := req.PathValue("id")
	run, err := h.s.StartSync(req.Context(), kind, id, "api", scope)
	if err == nil {
		w.Header().Set("Location", prefixOf(kind)+"/"+id+"/runs/"+strconv.FormatInt(run, 10))
	}
	return apierr.Reply(w, http.StatusAccepted)(map[string]int64{"run": run}, err)
}

func (h *handler) runs(w http.ResponseWriter, req *http.Request, kind string) error {
	before, limit, err := page(req)
	if err != nil {
		return err
	}
	items, err := h.s.Runs(req.Context(), kind, req.PathValue("id"), before, limit)
	return apierr.Reply(w, http.StatusOK)(map[string]any{"items": items}, err)
}

func (h *handler) run(w http.ResponseWriter, req *http.Request, kind string) error {
	run, err := strconv.ParseInt(req.PathValue("run"), 10, 64)
	if err != nil {
		return apierr.New(http.StatusNotFound, apierr.NotFound, "run %q not found", apierr.Clip(req.PathValue("run")))
	}
	return apierr.Reply(w, http.StatusOK)(h.s.Run(req.Context(), kind, req.PathValue("id"), run))
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

// parityStatus reads ?status=, the one filter of a parity report.
func parityStatus(req *http.Request) (string, error) {
	status := req.URL.Query().Get("status")
	if status == "" || ValidParityStatus(status) {
		return status, nil
	}
	return "", apierr.New(http.StatusBadRequest, apierr.BadRequest, "status %q: "+ParityStatusWanted, apierr.Clip(status))
}

// checkParity checks one remote ({"mirror": ID}), or every mirror.
func (h *handler) checkParity(w http.ResponseWriter, req *http.Request, _ string) error {
	if _, err := parityStatus(req); err != nil {
		return err
	}
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
		rep, err := h.s.Parity(req.Context(), "", id)
		if err != nil {
			return err
		}
		res.InParity = res.InParity && rep.InParity
		res.Reports = append(res.Reports, *rep)
	}
	return apierr.Reply(w, http.StatusOK)(res, nil)
}

// latestParity is the latest check of one remote (?mirror=ID), or of
// every mirror checked.
func (h *handler) latestParity(w http.ResponseWriter, req *http.Request, _ string) error {
	status, err := parityStatus(req)
	if err != nil {
		return err
	}
	one := req.URL.Query().Get("mirror")
	ids, err := h.remoteIDs(req, one)
	if err != nil {
		return err
	}
	res := ParityResult{InParity: true, Reports: []ParityReport{}}
	for _, id := range ids {
		rep, err := h.s.LatestParity(req.Context(), "", id, status)
		if errors.Is(err, storage.ErrNotFound) && one == "" {
			continue // a mirror never checked
		}
		if err != nil {
			return err
		}
		res.InParity = res.InParity && rep.InParity
		res.Reports = append(res.Reports, *rep)
	}
	if one != "" {
		return apierr.Reply(w, http.StatusOK)(res.Reports[0], nil)
	}
	return apierr.Reply(w, http.StatusOK)(res, nil)
}

func (h *handler) parityHistory(w http.ResponseWriter, req *http.Request, _ string) error {
	if _, err := parityStatus(req); err != nil {
		return err
	}
	before, limit, err := page(req)
	if err != nil {
		return err
	}
	mirror := req.URL.Query().Get("mirror")
	if mirror == "" {
		return apierr.New(http.StatusBadRequest, apierr.BadRequest, "history needs mirror=ID")
	}
	items, err := h.s.ParityHistory(req.Context(), mirror, before, limit)
	return apierr.Reply(w, http.StatusOK)(map[string]any{"items": items}, err)
}

func (h *handler) parityCheck(w http.ResponseWriter, req *http.Request, _ string) error {
	status, err := parityStatus(req)
	if err != nil {
		return err
	}
	check, err := strconv.ParseInt(req.PathValue("check"), 10, 64)
	if err != nil {
		return apierr.New(http.StatusNotFound, apierr.NotFound, "parity check %q not found", apierr.Clip(req.PathValue("check")))
	}
	return apierr.Reply(w, http.StatusOK)(h.s.ParityCheck(req.Context(), check, status))
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
