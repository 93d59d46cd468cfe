package main

import (
	"net/http"
	"strings"
	"time"

	"github.com/packreg/packreg/auth"
	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/internal/routes"
)

// The token endpoint of the Docker token flow: GET /token?service=&scope=
// with Basic credentials (or none: an anonymous token), and the OAuth2
// password grant as a POST form (grant_type=password, username,
// password, scope space-separated), which some clients use. The token
// grants the intersection of the scopes asked for and the caller's rights;
// no refresh tokens are issued (clients log in again).

const (
	// maxScopeParams bounds the scopes of one request; more are refused.
	maxScopeParams = 16
	// maxTokenForm bounds the POST form.
	maxTokenForm = 16 << 10
)

type tokenAnswer struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

func (g *gate) tokenRoutes() []routes.Route {
	h := http.HandlerFunc(g.token)
	return []routes.Route{
		routes.Get("/token", h).With(routes.Public),
		routes.Post("/token", h).With(routes.Public),
	}
}

func (g *gate) token(w http.ResponseWriter, req *http.Request) {
	var (
		service string
		scopes  []string
		id      = auth.AnonymousIdentity()
		err     error
	)
	if req.Method == http.MethodPost {
		req.Body = http.MaxBytesReader(w, req.Body, maxTokenForm)
		if err := req.ParseForm(); err != nil {
			g.refuse(w, req, apierr.Bad("token request: not a form: %v", err))
			return
		}
		if gt := req.PostForm.Get("grant_type"); gt != "password" {
			g.refuse(w, req, apierr.New(http.StatusBadRequest, "UNSUPPORTED_GRANT_TYPE",
				"grant_type %q is not supported: use password (no refresh tokens are issued)", apierr.Clip(gt)))
			return
		}
		service = req.PostForm.Get("service")
		scopes = strings.Fields(req.PostForm.Get("scope"))
		if id, err = g.login(req, req.PostForm.Get("username"), req.PostForm.Get("password")); err != nil {
			g.refuse(w, req, err)
			return
		}
	} else {
		q := req.URL.Query()
		service = q.Get("service")
		// Each value may hold several scopes, space-separated (RFC 6749
		// §3.3), as a challenge's scope does.
		for _, v := range q["scope"] {
			scopes = append(scopes, strings.Fields(v)...)
		}
		if req.Header.Get("Authorization") != "" {
			user, pass, ok := req.BasicAuth()
			if !ok {
				g.refuse(w, req, g.challenge(req, "", "the token endpoint takes Basic credentials"))
				return
			}
			if id, err = g.login(req, user, pass); err != nil {
				g.refuse(w, req, err)
				return
			}
		}
	}
	if service != "" && service != g.service {
		g.refuse(w, req, apierr.Bad("service %q is not this registry's (%q)", apierr.Clip(service), g.service))
		return
	}
	if len(scopes) > maxScopeParams {
		g.refuse(w, req, apierr.Bad("at most %d scopes per token request", maxScopeParams))
		return
	}
	var asked []auth.Scope
	for _, s := range scopes {
		sc, ok := auth.ParseScope(s)
		if !ok || len(s) > 512 {
			g.refuse(w, req, apierr.Bad("scope %q: want type:name:actions", apierr.Clip(s)))
			return
		}
		asked = append(asked, sc)
	}
	now := g.now()
	tok, err := g.signer.Issue(id.Name, g.auth.Grant(id, asked), now)
	if err != nil {
		g.refuse(w, req, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	apierr.JSON(w, http.StatusOK, tokenAnswer{Token: tok, AccessToken: tok,
		ExpiresIn: int(g.signer.TTL() / time.Second), IssuedAt: now.UTC().Format(time.RFC3339)})
}
