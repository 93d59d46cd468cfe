package attest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// Handler serves the key ring API:
//
//	POST /api/v1/keys                 {"name","pem","not_before"?,"not_after"?} → 201 key
//	GET  /api/v1/keys                 → {"keys":[...]}
//	GET  /api/v1/keys/{id}            → key
//	POST /api/v1/keys/{id}/retire     → key (rotation: valid until now)
//	POST /api/v1/keys/{id}/revoke     → key (trust withdrawn from all it signed)
//	GET  /api/v1/keys/{id}/signed     → {"key":...,"signed":[...]}
//
// and the version paths of ServeVersion under
// /api/v1/packs/NAME/versions/VERSION/ for a server without the pack API
// (tests); serve mounts it at /api/v1/keys only and lets the pack API
// delegate the version paths.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/keys", s.wrap(s.postKey))
	mux.HandleFunc("GET /api/v1/keys", s.wrap(s.listKeys))
	mux.HandleFunc("GET /api/v1/keys/{id}", s.wrap(keyAnswer(s.Key)))
	mux.HandleFunc("POST /api/v1/keys/{id}/retire", s.wrap(keyAnswer(s.RetireKey)))
	mux.HandleFunc("POST /api/v1/keys/{id}/revoke", s.wrap(keyAnswer(s.RevokeKey)))
	mux.HandleFunc("GET /api/v1/keys/{id}/signed", s.wrap(s.keySigned))
	mux.HandleFunc("/api/v1/keys/", s.wrap(notFound))
	mux.HandleFunc("/api/v1/packs/", s.wrap(func(w http.ResponseWriter, req *http.Request) error {
		name, version, rest, ok := splitVersionPath(req.URL.Path)
		if !ok {
			return notFound(w, req)
		}
		return s.serveVersion(w, req, name, version, rest)
	}))
	return mux
}

// VersionSuffixes are the last path components ServeVersion answers
// below /api/v1/packs/NAME/versions/VERSION/.
var VersionSuffixes = []string{"signatures", "attestations", "verification"}

// ServeVersion answers the attest paths of a pack version, for the pack
// API to delegate to:
//
//	GET  .../signatures     → {"verification", "signatures":[...]}
//	POST .../signatures     {"payload","signature"} (cosign simple signing, base64) → 201
//	GET  .../attestations   → {"verification", "attestations":[...]}
//	POST .../attestations   a DSSE envelope → 201
//	GET  .../verification   → the full report
//	POST .../verification   re-check everything, then the full report
func (s *Service) ServeVersion(w http.ResponseWriter, req *http.Request, name, version, suffix string) {
	s.wrap(func(w http.ResponseWriter, req *http.Request) error {
		return s.serveVersion(w, req, name, version, suffix)
	})(w, req)
}

func (s *Service) serveVersion(w http.ResponseWriter, req *http.Request, name, version, suffix string) error {
	ctx := req.Context()
	repo, d, err := s.versions.ResolveVersion(ctx, name, version)
	if err != nil {
		return err
	}
	switch req.Method + " " + suffix {
	case "GET signatures", "GET attestations", "GET verification":
	case "POST signatures":
		return s.postSignature(w, req, repo, d)
	case "POST attestations":
		return s.postAttestation(w, req, repo, d)
	case "POST verification":
		if err := s.Refresh(ctx, repo, d); err != nil {
			return err
		}
	default:
		return apierr.New(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "%s is not allowed on %s", req.Method, suffix)
	}
	rep, err := s.Evaluate(ctx, repo, d)
	if err != nil {
		return err
	}
	switch suffix {
	case "signatures":
		rep.Attestations = nil
	case "attestations":
		rep.Signatures = nil
	}
	return writeJSON(w, http.StatusOK, rep)
}

// splitVersionPath cuts /api/v1/packs/NAME/versions/VERSION/SUFFIX from
// the end, since NAME may contain slashes.
func splitVersionPath(p string) (name, version, suffix string, ok bool) {
	rest, ok := strings.CutPrefix(p, "/api/v1/packs/")
	if !ok {
		return "", "", "", false
	}
	i := strings.LastIndex(rest, "/")
	if i < 0 {
		return "", "", "", false
	}
	rest, suffix = rest[:i], rest[i+1:]
	i = strings.LastIndex(rest, "/versions/")
	if i <= 0 {
		return "", "", "", false
	}
	name, version = rest[:i], rest[i+len("/versions/"):]
	if version == "" || strings.Contains(version, "/") {
		return "", "", "", false
	}
	for _, s := range VersionSuffixes {
		if s == suffix {
			return name, version, suffix, true
		}
	}
	return "", "", "", false
}

// KeyView is a key as the API shows it (and packreg keys reads it).
type KeyView struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Algorithm string     `json:"algorithm"`
	State     string     `json:"state"`
	NotBefore *time.Time `json:"not_before,omitempty"`
	NotAfter  *time.Time `json:"not_after,omitempty"`
	Created   time.Time  `json:"created"`
	Updated   time.Time  `json:"updated"`
	PEM       string     `json:"pem"`
}

func viewKey(k *storage.Key) KeyView {
	return KeyView{ID: k.ID, Name: k.Name, Algorithm: k.Algorithm, State: k.State,
		NotBefore: timePtr(k.NotBefore), NotAfter: timePtr(k.NotAfter),
		Created: k.Created, Updated: k.Updated, PEM: k.PEM}
}

func (s *Service) postKey(w http.ResponseWriter, req *http.Request) error {
	var in struct {
		Name      string    `json:"name"`
		PEM       string    `json:"pem"`
		NotBefore time.Time `json:"not_before"`
		NotAfter  time.Time `json:"not_after"`
	}
	if err := apierr.DecodeJSON(req.Body, &in, 64<<10); err != nil {
		return err
	}
	k, err := s.AddKey(req.Context(), KeyInput{Name: in.Name, PEM: in.PEM, NotBefore: in.NotBefore, NotAfter: in.NotAfter})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/keys/"+k.ID)
	return writeJSON(w, http.StatusCreated, viewKey(k))
}

func (s *Service) listKeys(w http.ResponseWriter, req *http.Request) error {
	keys, err := s.Keys(req.Context())
	if err != nil {
		return err
	}
	out := make([]KeyView, len(keys))
	for i, k := range keys {
		out[i] = viewKey(k)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"keys": out})
}

// keyAnswer serves one key: what op returns for the {id} of the path.
func keyAnswer(op func(context.Context, string) (*storage.Key, error)) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, req *http.Request) error {
		k, err := op(req.Context(), req.PathValue("id"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, viewKey(k))
	}
}

func (s *Service) keySigned(w http.ResponseWriter, req *http.Request) error {
	id := req.PathValue("id")
	k, err := s.Key(req.Context(), id)
	if err != nil {
		return err
	}
	signed, err := s.KeySigned(req.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"key": viewKey(k), "signed": signed})
}

func notFound(http.ResponseWriter, *http.Request) error {
	return apierr.New(http.StatusNotFound, "NOT_FOUND", "no such endpoint")
}

// ErrUnverified refuses a posted signature or attestation that no trusted
// key verifies (HTTP 422): the API stores only what it can vouch for.
var ErrUnverified = errors.New("not verified by a trusted key")

// wrap turns a handler returning an error into an http.HandlerFunc. attest's
// own sentinels become API errors here; apierr.Write does the rest (registry
// and storage errors, the request id on 5xx).
func (s *Service) wrap(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		err := h(w, apiActor(req))
		if err == nil {
			return
		}
		switch {
		case errors.Is(err, ErrInvalid), errors.Is(err, ErrBadKey), errors.Is(err, apierr.ErrBody):
			err = apierr.New(http.StatusBadRequest, "INVALID", "%s", err.Error())
		case errors.Is(err, ErrUnverified):
			err = apierr.New(http.StatusUnprocessableEntity, "UNVERIFIED", "%s", err.Error())
		case errors.Is(err, ErrKeyState), errors.Is(err, storage.ErrConflict):
			err = apierr.New(http.StatusConflict, apierr.Conflict, "%s", err.Error())
		}
		apierr.Write(w, req, s.log, err)
	}
}

// apiActor records who calls the API, for the registry's events and the
// audit trail: whoever the server's authentication recorded, else the
// client address, as the registry does for its own anonymous clients.
func apiActor(req *http.Request) *http.Request {
	if registry.ActorFrom(req.Context()) == "anonymous" {
		return req.WithContext(registry.WithActor(req.Context(), "anonymous@"+req.RemoteAddr))
	}
	return req
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	apierr.JSON(w, status, v)
	return nil
}
