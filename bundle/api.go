package bundle

import (
	"mime"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/internal/routes"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// Paths of the API.
const (
	ExportPath  = "/api/v1/export"
	ImportPath  = "/api/v1/import"
	ImportsPath = "/api/v1/imports"
)

// Headers of an export's answer: what the bundle is before it arrives.
const (
	HeaderDigest   = "Packreg-Bundle-Digest"
	HeaderCursor   = "Packreg-Bundle-Cursor"
	HeaderChain    = "Packreg-Bundle-Chain"
	HeaderSequence = "Packreg-Bundle-Sequence"
	HeaderItems    = "Packreg-Bundle-Items"
)

// Routes are the bundle API's rows of the route table. Both write
// routes act on everything in their scope, so with authentication they
// are an administrator's, like the key ring's and the mirrors':
//
//	POST /api/v1/export        {"include","exclude","versions","states","since"} → 200 application/x-tar, streamed
//	POST /api/v1/import        a bundle (application/x-tar, or application/gzip), ?allowUnsigned=true
//	                           → 202 the import (publishing; poll it), 200 when already applied, 4xx refused
//	GET  /api/v1/imports       {"items":[...]}, newest first (?limit=N&before=RFC3339)
//	GET  /api/v1/imports/{id}  one import: state, bundle, progress, versions, error
func (s *Service) Routes() []routes.Route {
	return []routes.Route{
		routes.Post(ExportPath, s.api(s.export)),
		routes.Post(ImportPath, s.api(s.importBundle)),
		routes.Get(ImportsPath, s.api(s.listImports)),
		routes.Get(ImportsPath+"/{id}", s.api(s.getImport)),
	}
}

// Handler serves Routes alone (tests).
func (s *Service) Handler() http.Handler {
	return routes.Handler(apierr.NotFoundHandler(), apierr.NotAllowedHandler, s.Routes()...)
}

func (s *Service) api(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return apierr.Handler(s.log, func(w http.ResponseWriter, req *http.Request) error {
		return apiError(h(w, registry.WithRequestActor(req)))
	})
}

// maxRequest bounds an export request's JSON.
const maxRequest = 64 << 10

func (s *Service) export(w http.ResponseWriter, req *http.Request) error {
	var in ExportRequest
	if _, err := apierr.DecodeOptionalJSON(req.Body, &in, maxRequest); err != nil {
		return err
	}
	ctx := req.Context()
	x, err := s.PlanExport(ctx, in)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-tar")
	h.Set("Content-Disposition", `attachment; filename="bundle-`+x.Doc.Chain+"-"+strconv.FormatInt(x.Doc.Sequence, 10)+`.tar"`)
	h.Set(HeaderDigest, x.Digest.String())
	h.Set(HeaderCursor, x.Cursor.String())
	h.Set(HeaderChain, x.Doc.Chain)
	h.Set(HeaderSequence, strconv.FormatInt(x.Doc.Sequence, 10))
	h.Set(HeaderItems, strconv.Itoa(x.Items()))
	if x.Size >= 0 {
		h.Set("Content-Length", strconv.FormatInt(x.Size, 10))
	}
	w.WriteHeader(http.StatusOK)
	if err := x.Write(ctx, w, registry.ActorFrom(ctx)); err != nil {
		// The answer has begun: the client can only be told by a cut
		// connection, which its reader sees as an archive without its
		// end (every reader of a bundle checks for it).
		s.log.ErrorContext(ctx, "export failed while streaming", "bundle", x.Digest, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// importTypes are the bodies POST /api/v1/import takes. None is one a
// browser may send to another site without a preflight.
var importTypes = []string{"application/x-tar", "application/gzip", "application/x-gzip"}

func (s *Service) importBundle(w http.ResponseWriter, req *http.Request) error {
	q, err := apierr.Query(req.URL.RawQuery, "allowUnsigned")
	if err != nil {
		return err
	}
	o := ImportOptions{Actor: registry.ActorFrom(req.Context())}
	if v, ok := q["allowUnsigned"]; ok {
		if o.AllowUnsigned, err = strconv.ParseBool(v); err != nil {
			return apierr.Bad("allowUnsigned %q: want true or false", apierr.Clip(v))
		}
	}
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if !slices.Contains(importTypes, mt) {
		return apierr.New(http.StatusUnsupportedMediaType, apierr.UnsupportedMediaType,
			"an import is a bundle archive: Content-Type application/x-tar (or application/gzip), got %q", apierr.Clip(req.Header.Get("Content-Type")))
	}
	rep, err := s.Import(req.Context(), req.Body, o)
	if err != nil {
		return err
	}
	w.Header().Set("Location", ImportsPath+"/"+rep.ID)
	status := http.StatusAccepted
	if rep.State != storage.ImportPublishing {
		status = http.StatusOK
	}
	apierr.JSON(w, status, rep)
	return nil
}

func (s *Service) listImports(w http.ResponseWriter, req *http.Request) error {
	q, err := apierr.Query(req.URL.RawQuery, "limit", "before")
	if err != nil {
		return err
	}
	limit := 50
	if v, ok := q["limit"]; ok {
		if limit, err = apierr.ParseLimit(v, 500); err != nil {
			return err
		}
	}
	var before time.Time
	if v, ok := q["before"]; ok {
		if before, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return apierr.Bad("before %q: want an RFC 3339 time", apierr.Clip(v))
		}
	}
	items, err := s.List(req.Context(), before, limit)
	if items == nil {
		items = []*Report{}
	}
	return apierr.Reply(w, http.StatusOK)(map[string]any{"items": items}, err)
}

func (s *Service) getImport(w http.ResponseWriter, req *http.Request) error {
	return apierr.Reply(w, http.StatusOK)(s.Get(req.Context(), req.PathValue("id")))
}
