package ui

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/packreg/packreg/compliance"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/routes"
	"github.com/packreg/packreg/storage"
)

// Prefix is the root of the dashboard.
const Prefix = "/ui/"

//go:embed assets
var assets embed.FS

// Store is what the pages read of the metadata store.
type Store interface {
	ListAudit(ctx context.Context, q storage.AuditQuery) ([]storage.AuditRecord, error)
	ListPackVersions(ctx context.Context, q storage.PackQuery) ([]storage.PackVersion, error)
	PackLifecycle(ctx context.Context, name, version string) ([]storage.PackStatusChange, error)
}

// Compliance is compliance's read side (*compliance.Service).
type Compliance interface {
	Summary(ctx context.Context, pattern string) (*compliance.Summary, error)
	Packs(ctx context.Context, q storage.ComplianceQuery) (*compliance.Page, error)
	History(ctx context.Context, from, to time.Time, step time.Duration) ([]compliance.Counts, error)
}

// Signature is one signature or attestation of a version, as attest
// reports it now.
type Signature struct {
	Kind          string
	PredicateType string
	Signer        string // the key's name, or a keyless identity
	Status        string
	Reason        string
	Recorded      time.Time
}

// Reporter gives the current signatures and attestations of a manifest.
type Reporter interface {
	Signatures(ctx context.Context, repo string, d digest.Digest) ([]Signature, error)
}

// UI serves the dashboard.
type UI struct {
	st   Store
	comp Compliance
	rep  Reporter
	log  *slog.Logger
	now  func() time.Time
	tmpl *template.Template
	// wide: show what is the whole registry's (the trend, the audit
	// trail), which only an admin may read once authentication is on.
	wide bool
}

// New returns the dashboard. registryWide shows the trend and the latest
// audit records, which are the whole registry's: cmd passes true only
// while authentication is off (the rights of a caller do not filter them).
func New(st Store, comp Compliance, rep Reporter, log *slog.Logger, registryWide bool) *UI {
	funcs := template.FuncMap{
		"when":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"short":    shortDigest,
		"packURL":  func(name string) string { return Prefix + "packs/" + escapeName(name) },
		"percent":  percent,
		"pageLink": pageLink,
	}
	t := template.Must(template.New("").Funcs(funcs).ParseFS(assets, "assets/*.html"))
	return &UI{st: st, comp: comp, rep: rep, log: log, now: time.Now, tmpl: t, wide: registryWide}
}

// Routes are the dashboard's rows of the route table.
func (u *UI) Routes() []routes.Route {
	return []routes.Route{
		routes.Get("/ui", http.RedirectHandler(Prefix, http.StatusMovedPermanently)).With(routes.Public),
		routes.Get(Prefix+"style.css", http.HandlerFunc(u.style)).With(routes.Public),
		// The overview counts what the caller may pull (compliance's
		// read side asks); a pack page needs pull on the pack.
		routes.Get(Prefix, u.page(u.overview)).With(routes.AnyCaller),
		routes.Get(Prefix+"packs/{name:.+}", u.page(u.pack)).With(routes.CanPull),
	}
}

// Page sizes.
const (
	failingPage = 25
	auditShown  = 15
	versionPage = 50
)

// page renders what fn returns, or an error page; HEAD-less, GET only.
func (u *UI) page(fn func(req *http.Request) (string, any, int, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		name, data, status, err := fn(req)
		if err != nil {
			u.log.WarnContext(req.Context(), "ui: page failed", "path", req.URL.Path, "err", err)
			name, data, status = "error.html", map[string]any{"Title": "Error", "Message": "The page could not be built; the server log says why."}, http.StatusInternalServerError
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// No script runs on these pages, and none may be injected.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "same-origin")
		w.WriteHeader(status)
		if err := u.tmpl.ExecuteTemplate(w, name, data); err != nil {
			u.log.WarnContext(req.Context(), "ui: rendering", "page", name, "err", err)
		}
	})
}

func (u *UI) style(w http.ResponseWriter, req *http.Request) {
	b, err := assets.ReadFile("assets/style.css")
	if err != nil {
		http.Error(w, "no stylesheet", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=300")
	w.Write(b)
}

func shortDigest(d any) string {
	s := fmt.Sprint(d)
	if _, hex, ok := strings.Cut(s, ":"); ok && len(hex) > 12 {
		return hex[:12]
	}
	return s
}

// escapeName escapes each component of a repository name for a path.
func escapeName(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

func percent(n, of int64) int64 {
	if of == 0 {
		return 0
	}
	return n * 100 / of
}

// pageLink is the overview's URL for another page of failing versions.
func pageLink(name, cursor string) string {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if len(q) == 0 {
		return Prefix
	}
	return Prefix + "?" + q.Encode()
}
