package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/packreg/packreg/auth"
	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/internal/reqid"
	"github.com/packreg/packreg/internal/routes"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
)

// The auth gate: when authentication is configured, every row of the
// route table is wrapped (routes.Guard) in a check of the row's Access
// before its handler runs. The caller is read on every request, from the
// htpasswd file and the robots as they are now:
//
//   - no Authorization: anonymous, with the configured anonymous actions;
//   - Basic: a user or robot login (failures counted per source address:
//     slowed, then 429 TOOMANYREQUESTS with Retry-After);
//   - Bearer: a token of /token, verified, whose subject is read anew
//     (a removed user or a disabled robot is refused at once) and whose
//     grants narrow the subject's current rights.
//
// Refusals: without credentials, 401 with the Bearer challenge naming the
// scope the request needs; with a token that lacks the action, 401 with
// error="insufficient_scope"; with a Basic identity that lacks the right,
// 403 DENIED. On /api/ the answers take the apierr shape.

// gate holds what the checks need.
type gate struct {
	auth    *auth.Authority
	signer  *auth.Signer
	limiter *auth.Limiter
	log     *slog.Logger
	service string
	realm   string // the token endpoint's URL; "" derives it from the request
	now     func() time.Time
}

// caller is who a request is from.
type caller struct {
	id     auth.Identity
	claims *auth.Claims // a token's; nil for Basic and anonymous
	creds  bool         // credentials were presented
}

// authError is a refusal of the gate: an oci kind (UNAUTHORIZED,
// DENIED, TOOMANYREQUESTS) with its message and the headers of the answer.
// The registry (WriteError) and apierr answer it in their shapes, so the
// refusals the registry and pack return from an AccessFunc read alike.
type authError struct {
	kind   *oci.Kind
	msg    string
	header http.Header
}

func (e *authError) Error() string       { return e.msg }
func (e *authError) Unwrap() error       { return e.kind }
func (e *authError) Header() http.Header { return e.header }

func denied(format string, args ...any) *authError {
	return &authError{kind: oci.ErrDenied, msg: fmt.Sprintf(format, args...)}
}

// guard wraps a row of the route table in its check.
func (g *gate) guard(row routes.Route) http.Handler {
	if row.Access == routes.Public {
		return row.Handler
	}
	next := row.Handler
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c, err := g.identify(req)
		if err == nil {
			err = g.check(req, c, row.Access)
		}
		if err != nil {
			g.refuse(w, req, err)
			return
		}
		ctx := req.Context()
		if c.id.Kind != auth.Anonymous {
			ctx = registry.WithActor(ctx, c.id.Name)
		}
		ctx = registry.WithAccess(ctx, func(repo, action string) error { return g.allowed(req, c, repo, action) })
		next.ServeHTTP(w, req.WithContext(ctx))
	})
}

// check applies a row's Access to c.
func (g *gate) check(req *http.Request, c caller, a routes.Access) error {
	switch a {
	case routes.Public:
		return nil
	case routes.AnyCaller:
		return g.catalogChallenge(req, c)
	case routes.Authenticated:
		if c.id.Kind == auth.Anonymous {
			return g.challenge(req, "", "authentication required")
		}
		return nil
	case routes.AdminOnly:
		if c.id.Kind == auth.Anonymous {
			return g.challenge(req, "", "authentication required: this is the admin API")
		}
		if !g.auth.IsAdmin(c.id) || c.claims != nil && !c.claims.Registry("admin") {
			return denied("%s is not an admin: the admin API is for the users in auth.admins", c.id.Name)
		}
		return nil
	}
	name := req.PathValue("name")
	if err := g.allowed(req, c, name, a.Action()); err != nil {
		return err
	}
	return g.mountScope(req, c, name)
}

// mountScope refuses a token that may push to repo but lacks pull on the
// mount's source when the identity may pull there: 401 insufficient_scope
// naming both, so a client that caches a token per repository (the OCI
// conformance suite) fetches the one it needs, as with Distribution.
// Without the right it stays an ordinary upload: the answer depends on
// rights only, never on what the source holds.
func (g *gate) mountScope(req *http.Request, c caller, repo string) error {
	from := mountSource(req, repo)
	if from == "" || c.claims == nil || c.claims.Grant(from).Has(auth.Pull) || !g.auth.Rights(c.id, from).Has(auth.Pull) {
		return nil
	}
	scope := auth.Scope{Type: "repository", Name: repo, Actions: scopeActions(auth.Push)}.String() + " " +
		auth.Scope{Type: "repository", Name: from, Actions: []string{"pull"}}.String()
	e := g.challenge(req, scope, fmt.Sprintf("the token does not grant pull on %s, the mount's source", apierr.Clip(from)))
	e.header.Set("WWW-Authenticate", e.header.Get("WWW-Authenticate")+`,error="insufficient_scope"`)
	return e
}

// allowed is the caller's right to action on repo, as the AccessFunc the
// handlers ask too.
func (g *gate) allowed(req *http.Request, c caller, repo, action string) error {
	want, ok := auth.ParseAction(action)
	if !ok {
		return fmt.Errorf("auth gate: unknown action %q", action) // a bug: a 500
	}
	rights := g.auth.Rights(c.id, repo)
	if c.claims != nil && !(want == auth.Pull && listsCatalog(req, c.claims)) {
		rights &= c.claims.Grant(repo)
	}
	if rights.Has(want) {
		return nil
	}
	scope := auth.Scope{Type: "repository", Name: repo, Actions: scopeActions(want)}.String()
	if from := mountSource(req, repo); from != "" {
		// As Distribution does: a client that asks for the challenge's
		// scope gets a token that can read the mount's source too (if
		// its rights allow), else every mount would become an upload.
		scope += " " + auth.Scope{Type: "repository", Name: from, Actions: []string{"pull"}}.String()
	}
	switch {
	case c.id.Kind == auth.Anonymous && !c.creds:
		return g.challenge(req, scope, fmt.Sprintf("authentication required to %s %s", action, apierr.Clip(repo)))
	case c.claims != nil:
		e := g.challenge(req, scope, fmt.Sprintf("the token does not grant %s on %s", action, apierr.Clip(repo)))
		e.header.Set("WWW-Authenticate", e.header.Get("WWW-Authenticate")+`,error="insufficient_scope"`)
		return e
	}
	return denied("%s may not %s %s", c.id.Name, action, apierr.Clip(repo))
}

// catalogChallenge answers a _catalog request without credentials with
// 401 and a challenge for registry:catalog:* when anonymous may pull
// nothing, as Distribution does: oras and regctl send their credentials
// only when challenged, and an empty 200 listed nothing for them, however
// much their user may pull. Anonymous pull (auth.anonymous) covers every
// repository: then the anonymous list is the whole catalog.
func (g *gate) catalogChallenge(req *http.Request, c caller) error {
	if req.URL.Path != "/v2/_catalog" || c.id.Kind != auth.Anonymous || c.creds || g.auth.Rights(c.id, "").Has(auth.Pull) {
		return nil
	}
	return g.challenge(req, auth.Scope{Type: "registry", Name: "catalog", Actions: []string{"*"}}.String(),
		"authentication required to list the catalog")
}

// listsCatalog reports whether req lists the catalog with a token that
// grants registry:catalog:*, all that crane catalog asks for: it lists
// what the token's subject may pull, not only what its repository scopes
// name (nothing, for crane's token).
func listsCatalog(req *http.Request, cl *auth.Claims) bool {
	return req.URL.Path == "/v2/_catalog" && cl.Registry("catalog")
}

// mountSource is the source repository of a cross-repository mount into
// repo ("" for any other request, or a malformed name: never echoed).
func mountSource(req *http.Request, repo string) string {
	if req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/blobs/uploads/") || req.PathValue("name") != repo {
		return ""
	}
	q := req.URL.Query()
	if from := q.Get("from"); q.Get("mount") != "" && from != repo && oci.ValidName(from) {
		return from
	}
	return ""
}

// scopeActions are the actions a challenge asks for: what clients ask a
// token for when they push is "pull,push".
func scopeActions(a auth.Action) []string {
	switch a {
	case auth.Push, auth.Overwrite:
		return []string{"pull", "push"}
	}
	return a.Names()
}

// identify reads the caller from the Authorization header.
func (g *gate) identify(req *http.Request) (caller, error) {
	h := req.Header.Get("Authorization")
	if h == "" {
		return caller{id: auth.AnonymousIdentity()}, nil
	}
	scheme, cred, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		user, pass, ok := req.BasicAuth()
		if !ok {
			return caller{}, g.challenge(req, "", "malformed Basic credentials")
		}
		id, err := g.login(req, user, pass)
		if err != nil {
			return caller{}, err
		}
		return caller{id: id, creds: true}, nil
	case strings.EqualFold(scheme, "Bearer"):
		claims, err := g.signer.Verify(strings.TrimSpace(cred))
		if err != nil {
			g.log.DebugContext(req.Context(), "token refused", "err", err)
			return caller{}, g.invalidToken(req)
		}
		id, err := g.auth.Current(req.Context(), claims.Subject)
		if errors.Is(err, auth.ErrBadCredentials) {
			return caller{}, g.invalidToken(req)
		}
		if err != nil {
			return caller{}, err
		}
		return caller{id: id, claims: claims, creds: true}, nil
	}
	return caller{}, g.challenge(req, "", "unsupported Authorization scheme: use Basic or Bearer")
}

// login checks Basic credentials under the failed-login limiter.
func (g *gate) login(req *http.Request, user, pass string) (auth.Identity, error) {
	src := sourceOf(req)
	if blocked, left := g.limiter.Blocked(src); blocked {
		secs := int(left.Round(time.Second) / time.Second)
		return auth.Identity{}, &authError{kind: oci.ErrTooManyRequests,
			msg:    fmt.Sprintf("too many failed logins from this address; retry in %d s", max(secs, 1)),
			header: http.Header{"Retry-After": {strconv.Itoa(max(secs, 1))}}}
	}
	id, err := g.auth.Login(req.Context(), user, pass)
	if errors.Is(err, auth.ErrBadCredentials) {
		n := g.limiter.Fail(src)
		g.log.InfoContext(req.Context(), "failed login", "user", apierr.Clip(user), "remote", src, "failures", n)
		// Slowed: each failure past the third costs the source more time,
		// up to a second, before the limiter refuses it outright.
		if d := time.Duration(n-3) * 100 * time.Millisecond; d > 0 {
			t := time.NewTimer(min(d, time.Second))
			select {
			case <-t.C:
			case <-req.Context().Done():
				t.Stop()
			}
		}
		return auth.Identity{}, g.challenge(req, "", "invalid username or password")
	}
	return id, err
}

// sourceOf is the address failed logins are counted by: the peer's IP
// (never a forwarded-for header, which the client writes).
func sourceOf(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}

// challenge is a 401 asking for credentials: the Bearer challenge on
// /v2/, Basic on /api/ and on /token itself.
func (g *gate) challenge(req *http.Request, scope, msg string) *authError {
	e := &authError{kind: oci.ErrUnauthorized, msg: msg, header: http.Header{}}
	if strings.HasPrefix(req.URL.Path, "/api/") || req.URL.Path == "/token" {
		e.header.Set("WWW-Authenticate", `Basic realm="packreg"`)
		return e
	}
	v := fmt.Sprintf(`Bearer realm=%q,service=%q`, g.realmOf(req), g.service)
	if scope != "" {
		v += fmt.Sprintf(`,scope=%q`, scope)
	}
	e.header.Set("WWW-Authenticate", v)
	return e
}

func (g *gate) invalidToken(req *http.Request) *authError {
	e := g.challenge(req, "", "invalid or expired token, or its subject may no longer log in")
	if !strings.HasPrefix(req.URL.Path, "/api/") {
		e.header.Set("WWW-Authenticate", e.header.Get("WWW-Authenticate")+`,error="invalid_token"`)
	}
	return e
}

// realmOf is the token endpoint's URL: configured, or this server's as
// the client reached it (a Host that is no host name is not echoed).
func (g *gate) realmOf(req *http.Request) string {
	if g.realm != "" {
		return g.realm
	}
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	host := req.Host
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	if !validHostName(name) {
		host = "localhost"
	}
	return scheme + "://" + host + "/token"
}

// refuse answers a refusal in the route's shape.
func (g *gate) refuse(w http.ResponseWriter, req *http.Request, err error) {
	if oci.KindOf(err) == nil {
		g.log.ErrorContext(req.Context(), "auth gate", "request_id", reqid.From(req.Context()), "err", err)
	}
	if strings.HasPrefix(req.URL.Path, "/api/") || req.URL.Path == "/token" {
		apierr.Write(w, req, g.log, err)
		return
	}
	registry.WriteError(w, req, err)
}
