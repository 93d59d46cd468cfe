package attest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/internal/routes"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// Routes are attest's rows of the route table: the key ring
//
//	POST /api/v1/keys                 {"name","pem","notBefore"?,"notAfter"?,"usage"?} → 201 key
//	GET  /api/v1/keys                 → {"keys":[...]}
//	GET  /api/v1/keys/{id}            → key
//	POST /api/v1/keys/{id}/retire     → key (rotation: valid until now)
//	POST /api/v1/keys/{id}/revoke     → key (trust withdrawn from all it signed)
//	GET  /api/v1/keys/{id}/signed     → {"key":...,"signed":[...]}
//
//	POST   /api/v1/trusted-roots         {"name","trustedRoot":{trusted_root.json}} → 201 root
//	GET    /api/v1/trusted-roots         → {"trustedRoots":[...]} (the config file's too)
//	GET    /api/v1/trusted-roots/{name}  → root, with "trustedRoot"
//	DELETE /api/v1/trusted-roots/{name}  → 204 (API roots only)
//
// and the signatures of a pack version, below the pack API's path (the
// pack index resolves NAME/VERSION, refusing a bad name or version):
//
//	GET  .../signatures     → {"verification", "signatures":[...]}
//	POST .../signatures     {"payload","signature"} (cosign simple signing, base64) → 201
//	GET  .../attestations   → {"verification", "attestations":[...]}
//	POST .../attestations   a DSSE envelope → 201
//	GET  .../verification   → the full report
//	POST .../verification   re-check everything, then the full report
func (s *Service) Routes() []routes.Route {
	const version = "/api/v1/packs/{name:.+}/versions/{version}/"
	return []routes.Route{
		routes.Post("/api/v1/keys", s.wrap(s.postKey)),
		routes.Get("/api/v1/keys", s.wrap(s.listKeys)),
		routes.Get("/api/v1/keys/{id}", s.wrap(keyAnswer(s.Key))),
		routes.Post("/api/v1/keys/{id}/retire", s.wrap(keyAnswer(s.RetireKey))),
		routes.Post("/api/v1/keys/{id}/revoke", s.wrap(keyAnswer(s.RevokeKey))),
		routes.Get("/api/v1/keys/{id}/signed", s.wrap(s.keySigned)),
		// Trusted roots change what is trusted, as keys do: admin rows
		// like the key ring's.
		routes.Post("/api/v1/trusted-roots", s.wrap(s.postRoot)),
		routes.Get("/api/v1/trusted-roots", s.wrap(s.listRoots)),
		routes.Get("/api/v1/trusted-roots/{name}", s.wrap(s.getRoot)),
		routes.Delete("/api/v1/trusted-roots/{name}", s.wrap(s.deleteRoot)),
		routes.Get(version+"signatures", s.wrap(s.report("signatures"))).With(routes.CanPull),
		routes.Post(version+"signatures", s.wrap(s.onVersion(s.postSignature))).With(routes.CanPush),
		routes.Get(version+"attestations", s.wrap(s.report("attestations"))).With(routes.CanPull),
		routes.Post(version+"attestations", s.wrap(s.onVersion(s.postAttestation))).With(routes.CanPush),
		routes.Get(version+"verification", s.wrap(s.report(""))).With(routes.CanPull),
		routes.Post(version+"verification", s.wrap(s.onVersion(s.refresh))).With(routes.CanPush),
	}
}

// Handler serves Routes alone, for tests and a server with this API only.
func (s *Service) Handler() http.Handler {
	return routes.Handler(apierr.NotFoundHandler(), apierr.NotAllowedHandler, s.Routes()...)
}

// onVersion resolves the pack version of the path to its repository and
// manifest digest for h.
func (s *Service) onVersion(h func(http.ResponseWriter, *http.Request, string, digest.Digest) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, req *http.Request) error {
		repo, d, err := s.versions.ResolveVersion(req.Context(), req.PathValue("name"), req.PathValue("version"))
		if err != nil {
			return err
		}
		return h(w, req, repo, d)
	}
}

// report answers the verification report of a version; only the
// signatures or the attestations of it when part says so.
func (s *Service) report(part string) func(http.ResponseWriter, *http.Request) error {
	return s.onVersion(func(w http.ResponseWriter, req *http.Request, repo string, d digest.Digest) error {
		return s.answerReport(w, req, repo, d, part)
	})
}

// refresh re-checks everything of a version, then answers the full report.
func (s *Service) refresh(w http.ResponseWriter, req *http.Request, repo string, d digest.Digest) error {
	if err := s.Refresh(req.Context(), repo, d); err != nil {
		return err
	}
	return s.answerReport(w, req, repo, d, "")
}

func (s *Service) answerReport(w http.ResponseWriter, req *http.Request, repo string, d digest.Digest, part string) error {
	rep, err := s.Evaluate(req.Context(), repo, d)
	if err != nil {
		return err
	}
	switch part {
	case "signatures":
		rep.Attestations = nil
	case "attestations":
		rep.Signatures = nil
	}
	return apierr.Reply(w, http.StatusOK)(rep, nil)
}

// KeyView is a key as the API shows it (and packreg keys reads it).
type KeyView struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Algorithm string     `json:"algorithm"`
	State     string     `json:"state"`
	NotBefore *time.Time `json:"notBefore,omitempty"`
	NotAfter  *time.Time `json:"notAfter,omitempty"`
	Usage     []string   `json:"usage"`
	Created   time.Time  `json:"created"`
	Updated   time.Time  `json:"updated"`
	PEM       string     `json:"pem"`
}

func viewKey(k *storage.Key) KeyView {
	return KeyView{ID: k.ID, Name: k.Name, Algorithm: k.Algorithm, State: k.State,
		NotBefore: timePtr(k.NotBefore), NotAfter: timePtr(k.NotAfter), Usage: k.Usage,
		Created: k.Created, Updated: k.Updated, PEM: k.PEM}
}

func (s *Service) postKey(w http.ResponseWriter, req *http.Request) error {
	var in struct {
		Name      string    `json:"name"`
		PEM       string    `json:"pem"`
		NotBefore time.Time `json:"notBefore"`
		NotAfter  time.Time `json:"notAfter"`
		Usage     []string  `json:"usage"`
		// The snake_case spellings of release 1, read until the next.
		OldNotBefore time.Time `json:"not_before"`
		OldNotAfter  time.Time `json:"not_after"`
	}
	if err := apierr.DecodeJSON(req.Body, &in, 64<<10); err != nil {
		return err
	}
	notBefore, err := either("notBefore", in.NotBefore, "not_before", in.OldNotBefore)
	if err != nil {
		return err
	}
	notAfter, err := either("notAfter", in.NotAfter, "not_after", in.OldNotAfter)
	if err != nil {
		return err
	}
	k, err := s.AddKey(req.Context(), KeyInput{Name: in.Name, PEM: in.PEM, NotBefore: notBefore, NotAfter: notAfter, Usage: in.Usage})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/keys/"+k.ID)
	return apierr.Reply(w, http.StatusCreated)(viewKey(k), nil)
}

// either is the one of a field's two spellings the client gave.
func either(name string, v time.Time, oldName string, old time.Time) (time.Time, error) {
	switch {
	case old.IsZero():
		return v, nil
	case v.IsZero():
		return old, nil
	}
	return time.Time{}, fmt.Errorf("%w: %s and %s are one field: give one", ErrInvalid, name, oldName)
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
	return apierr.Reply(w, http.StatusOK)(map[string]any{"keys": out}, nil)
}

// keyAnswer serves one key: what op returns for the {id} of the path.
func keyAnswer(op func(context.Context, string) (*storage.Key, error)) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, req *http.Request) error {
		k, err := op(req.Context(), req.PathValue("id"))
		if err != nil {
			return err
		}
		return apierr.Reply(w, http.StatusOK)(viewKey(k), nil)
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
	return apierr.Reply(w, http.StatusOK)(map[string]any{"key": viewKey(k), "signed": signed}, nil)
}

func (s *Service) postRoot(w http.ResponseWriter, req *http.Request) error {
	var in struct {
		Name        string          `json:"name"`
		TrustedRoot json.RawMessage `json:"trustedRoot"`
	}
	if err := apierr.DecodeJSON(req.Body, &in, maxRootSize+64<<10); err != nil {
		return err
	}
	if len(in.TrustedRoot) == 0 {
		return fmt.Errorf("%w: trustedRoot is required (the trusted_root.json object)", ErrInvalid)
	}
	v, err := s.AddTrustedRoot(req.Context(), in.Name, in.TrustedRoot)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/trusted-roots/"+v.Name)
	return apierr.Reply(w, http.StatusCreated)(v, nil)
}

func (s *Service) listRoots(w http.ResponseWriter, req *http.Request) error {
	roots, err := s.TrustedRoots(req.Context())
	if err != nil {
		return err
	}
	return apierr.Reply(w, http.StatusOK)(map[string]any{"trustedRoots": roots}, nil)
}

func (s *Service) getRoot(w http.ResponseWriter, req *http.Request) error {
	v, doc, err := s.TrustedRoot(req.Context(), req.PathValue("name"))
	if err != nil {
		return err
	}
	return apierr.Reply(w, http.StatusOK)(struct {
		RootView
		TrustedRoot json.RawMessage `json:"trustedRoot"`
	}{v, doc}, nil)
}

func (s *Service) deleteRoot(w http.ResponseWriter, req *http.Request) error {
	if err := s.DeleteTrustedRoot(req.Context(), req.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ErrUnverified refuses a posted signature or attestation that no trusted
// key verifies (HTTP 422): the API stores only what it can vouch for.
var ErrUnverified = errors.New("not verified by a trusted key")

// wrap turns a handler returning an error into an http.HandlerFunc. attest's
// own sentinels become API errors here; apierr.Write does the rest (registry
// and storage errors, the request id on 5xx).
func (s *Service) wrap(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		err := h(w, registry.WithRequestActor(req))
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
