package main

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/packreg/packreg/auth"
	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/internal/routes"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// The robots API (admin only), on when authentication is:
//
//	POST   /api/v1/robots                 {"name","rules","expiresAt"} → 201, the secret once
//	GET    /api/v1/robots                 → {"robots": [...]}, never a secret or its hash
//	GET    /api/v1/robots/{robot}
//	POST   /api/v1/robots/{robot}/disable and /enable
//	DELETE /api/v1/robots/{robot}         → 204
//
// A robot logs in as "robot:<name>" with its secret; its rights are its
// own rules (repositories and actions, first match wins) plus what the
// configured rules grant "robot:<name>" or "*". Every change is an event
// of the audit trail, with the admin as its actor.

const maxRobotBody = 64 << 10

type robotsAPI struct {
	store storage.Robots
	log   *slog.Logger
	now   func() time.Time
}

// robotRequest is the body of POST /api/v1/robots: nothing else is read
// (an unknown field is a 400), so no field can be smuggled in.
type robotRequest struct {
	Name      string      `json:"name"`
	Rules     []auth.Rule `json:"rules"`
	ExpiresAt *time.Time  `json:"expiresAt"`
}

type robotView struct {
	Name      string      `json:"name"`
	Identity  string      `json:"identity"`
	Rules     []auth.Rule `json:"rules"`
	ExpiresAt *time.Time  `json:"expiresAt,omitempty"`
	Disabled  bool        `json:"disabled"`
	Created   time.Time   `json:"created"`
	CreatedBy string      `json:"createdBy"`
}

type robotCreated struct {
	robotView
	// Secret is shown here once; the server keeps its hash only.
	Secret string `json:"secret"`
}

func (a *robotsAPI) routes() []routes.Route {
	h := func(f func(http.ResponseWriter, *http.Request) error) http.Handler { return apierr.Handler(a.log, f) }
	return []routes.Route{
		routes.Post("/api/v1/robots", h(a.create)),
		routes.Get("/api/v1/robots", h(a.list)),
		routes.Get("/api/v1/robots/{robot}", h(a.get)),
		routes.Post("/api/v1/robots/{robot}/disable", h(a.setDisabled(true))),
		routes.Post("/api/v1/robots/{robot}/enable", h(a.setDisabled(false))),
		routes.Delete("/api/v1/robots/{robot}", h(a.delete)),
	}
}

func (a *robotsAPI) create(w http.ResponseWriter, req *http.Request) error {
	var r robotRequest
	if err := apierr.DecodeJSON(req.Body, &r, maxRobotBody); err != nil {
		return err
	}
	r.Name = strings.TrimPrefix(r.Name, auth.RobotPrefix)
	if !auth.ValidRobotName(r.Name) {
		return apierr.Bad("name %q: want 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit", apierr.Clip(r.Name))
	}
	if len(r.Rules) == 0 {
		return apierr.Bad("rules: a robot needs at least one rule (repositories and actions)")
	}
	if err := auth.ValidateRobotRules(r.Rules); err != nil {
		return apierr.Bad("rules: %v", err)
	}
	now := a.now().UTC()
	var expires time.Time
	if r.ExpiresAt != nil {
		if !r.ExpiresAt.After(now) {
			return apierr.Bad("expiresAt %s is not in the future", r.ExpiresAt.Format(time.RFC3339))
		}
		expires = r.ExpiresAt.UTC()
	}
	secret, hash := auth.NewSecret()
	actor := registry.ActorFrom(req.Context())
	rob := &storage.Robot{Name: r.Name, SecretHash: hash, Rules: auth.EncodeRobotRules(r.Rules),
		ExpiresAt: expires, Created: now, CreatedBy: actor}
	err := a.store.CreateRobot(req.Context(), rob, robotEvent(actor, "robot.create", r.Name))
	if errors.Is(err, storage.ErrConflict) {
		return apierr.New(http.StatusConflict, apierr.Conflict, "robot %s exists", r.Name)
	}
	if err != nil {
		return err
	}
	v, err := viewRobot(rob)
	if err != nil {
		return err
	}
	apierr.JSON(w, http.StatusCreated, robotCreated{robotView: v, Secret: secret})
	return nil
}

func (a *robotsAPI) list(w http.ResponseWriter, req *http.Request) error {
	rs, err := a.store.ListRobots(req.Context())
	if err != nil {
		return err
	}
	out := []robotView{}
	for _, r := range rs {
		v, err := viewRobot(r)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	apierr.JSON(w, http.StatusOK, map[string]any{"robots": out})
	return nil
}

func (a *robotsAPI) get(w http.ResponseWriter, req *http.Request) error {
	r, err := a.store.GetRobot(req.Context(), req.PathValue("robot"))
	if err != nil {
		return err
	}
	return apierr.Reply(w, http.StatusOK)(viewRobot(r))
}

func (a *robotsAPI) setDisabled(disabled bool) func(http.ResponseWriter, *http.Request) error {
	action := "robot.enable"
	if disabled {
		action = "robot.disable"
	}
	return func(w http.ResponseWriter, req *http.Request) error {
		if _, err := apierr.DecodeOptionalJSON(req.Body, &struct{}{}, maxRobotBody); err != nil {
			return err
		}
		name := req.PathValue("robot")
		if err := a.store.SetRobotDisabled(req.Context(), name, disabled,
			robotEvent(registry.ActorFrom(req.Context()), action, name)); err != nil {
			return err
		}
		return a.get(w, req)
	}
}

func (a *robotsAPI) delete(w http.ResponseWriter, req *http.Request) error {
	name := req.PathValue("robot")
	if err := a.store.DeleteRobot(req.Context(), name, robotEvent(registry.ActorFrom(req.Context()), "robot.delete", name)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func robotEvent(actor, action, name string) storage.Event {
	return storage.Event{Actor: actor, Action: action, Target: auth.RobotPrefix + name, At: time.Now().UTC()}
}

func viewRobot(r *storage.Robot) (robotView, error) {
	rules, err := auth.DecodeRobotRules(r.Rules)
	if err != nil {
		return robotView{}, err
	}
	v := robotView{Name: r.Name, Identity: auth.RobotPrefix + r.Name, Rules: rules, Disabled: r.Disabled,
		Created: r.Created, CreatedBy: r.CreatedBy}
	if !r.ExpiresAt.IsZero() {
		t := r.ExpiresAt
		v.ExpiresAt = &t
	}
	return v, nil
}
