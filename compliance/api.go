package compliance

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/internal/repopattern"
	"github.com/packreg/packreg/internal/routes"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// Prefix is the root of the compliance API.
const Prefix = "/api/v1/compliance"

// Page sizes of the packs listing.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	// maxRulesBody bounds a PUT of the rules.
	maxRulesBody = 1 << 20
)

// Routes are the compliance API's rows of the route table:
//
//	GET /api/v1/compliance/summary[?repositories=GLOB]
//	GET /api/v1/compliance/packs?status=&name=&limit=&cursor=&format=csv
//	GET /api/v1/compliance/history?from=&to=&step=
//	GET /api/v1/compliance/rules
//	PUT /api/v1/compliance/rules   {"rules": [...]}
func (s *Service) Routes(logger *slog.Logger) []routes.Route {
	h := apierr.Handler
	return []routes.Route{
		// Summary and packs show what the caller may pull; the history
		// is the whole registry's counts, and rules change what every
		// version is judged by: admins'.
		routes.Get(Prefix+"/summary", h(logger, s.summary)).With(routes.AnyCaller),
		routes.Get(Prefix+"/packs", h(logger, s.packs)).With(routes.AnyCaller),
		routes.Get(Prefix+"/history", h(logger, s.history)).With(routes.AdminOnly),
		routes.Get(Prefix+"/rules", h(logger, s.getRules)).With(routes.Authenticated),
		routes.Put(Prefix+"/rules", h(logger, s.putRules)).With(routes.AdminOnly),
	}
}

// Handler serves Routes alone, for tests.
func (s *Service) Handler(logger *slog.Logger) http.Handler {
	return routes.Handler(apierr.NotFoundHandler(), apierr.NotAllowedHandler, s.Routes(logger)...)
}

func (s *Service) summary(w http.ResponseWriter, req *http.Request) error {
	p, err := apierr.Query(req.URL.RawQuery, "repositories")
	if err != nil {
		return err
	}
	pat := p["repositories"]
	if _, given := p["repositories"]; given {
		if err := repopattern.Check(pat); err != nil || len(pat) > 512 {
			return apierr.Bad(`repositories %q: want a repository pattern like "acme/*", "acme/**" or "**"`, apierr.Clip(pat))
		}
	}
	return apierr.Reply(w, http.StatusOK)(s.Summary(req.Context(), pat))
}

// Item is one version in GET /api/v1/compliance/packs.
type Item struct {
	Name         string                      `json:"name"`
	Version      string                      `json:"version"`
	Digest       string                      `json:"digest"`
	Lifecycle    string                      `json:"lifecycle"`
	Verification string                      `json:"verification"`
	Attested     bool                        `json:"attested"`
	Attestations []string                    `json:"attestations"`
	Compliant    bool                        `json:"compliant"`
	Findings     []storage.ComplianceFinding `json:"findings"`
	EvaluatedAt  time.Time                   `json:"evaluatedAt"`
}

// Page is a page of GET /api/v1/compliance/packs.
type Page struct {
	Items []Item `json:"items"`
	Next  string `json:"next,omitempty"`
}

func itemOf(r storage.ComplianceRecord) Item {
	it := Item{Name: r.Name, Version: r.Version, Digest: string(r.Digest), Lifecycle: r.Lifecycle, Verification: r.Verification,
		Attested: len(r.Attestations) > 0, Attestations: r.Attestations, Compliant: r.Compliant, Findings: r.Findings, EvaluatedAt: r.Evaluated}
	if it.Attestations == nil {
		it.Attestations = []string{}
	}
	if it.Findings == nil {
		it.Findings = []storage.ComplianceFinding{}
	}
	return it
}

func (s *Service) packs(w http.ResponseWriter, req *http.Request) error {
	q, asCSV, err := packsQuery(req.URL.RawQuery)
	if err != nil {
		return err
	}
	page, err := s.Packs(req.Context(), q)
	if err != nil {
		return err
	}
	if !asCSV {
		apierr.JSON(w, http.StatusOK, page)
		return nil
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="compliance.csv"`)
	if page.Next != "" {
		w.Header().Set("Packreg-Next-Cursor", page.Next)
	}
	return WriteCSV(w, page.Items)
}

// Packs returns one page of the stored findings, leaving out what the
// caller may not pull (a page may then be short; the cursor still
// follows the store's order).
func (s *Service) Packs(ctx context.Context, q storage.ComplianceQuery) (*Page, error) {
	limit := q.Limit
	q.Limit++
	recs, err := s.st.ListComplianceRecords(ctx, q)
	if err != nil {
		return nil, err
	}
	out := &Page{Items: make([]Item, 0, min(len(recs), limit))}
	for i, r := range recs {
		if i == limit {
			out.Next = encodeCursor(recs[i-1].Name, recs[i-1].Version)
			break
		}
		if registry.MayPull(ctx, r.Name) {
			out.Items = append(out.Items, itemOf(r))
		}
	}
	return out, nil
}

// CSVHeader is the first row of the CSV listing.
var CSVHeader = []string{"name", "version", "digest", "lifecycle", "verification", "attested", "attestations", "compliant", "findings"}

// WriteCSV writes items as CSV: one row each, attestation types joined by
// ";", failing findings as "rule: reason" joined by "; ". Cells that a
// spreadsheet would take for a formula are quoted with a leading "'".
func WriteCSV(w interface{ Write([]byte) (int, error) }, items []Item) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, it := range items {
		var fails []string
		for _, f := range it.Findings {
			if f.Status == Fail {
				fails = append(fails, f.Rule+": "+f.Reason)
			}
		}
		row := []string{it.Name, it.Version, it.Digest, it.Lifecycle, it.Verification, strconv.FormatBool(it.Attested),
			strings.Join(it.Attestations, ";"), strconv.FormatBool(it.Compliant), strings.Join(fails, "; ")}
		for i, c := range row {
			row[i] = defuse(c)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// defuse keeps a cell from being read as a formula (CSV injection).
func defuse(c string) string {
	if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
		return "'" + c
	}
	return c
}

func packsQuery(raw string) (storage.ComplianceQuery, bool, error) {
	q := storage.ComplianceQuery{Limit: DefaultLimit}
	p, err := apierr.Query(raw, "status", "name", "limit", "cursor", "format")
	if err != nil {
		return q, false, err
	}
	asCSV := false
	for k, v := range p {
		switch k {
		case "status":
			switch v {
			case "compliant", "failing":
				c := v == "compliant"
				q.Compliant = &c
			default:
				return q, false, apierr.Bad("status %q: want compliant or failing", apierr.Clip(v))
			}
		case "name":
			if !apierr.Printable(v) {
				return q, false, apierr.Bad("name %q: want the start of a pack name like acme/", apierr.Clip(v))
			}
			q.NamePrefix = v
		case "limit":
			n, err := apierr.ParseLimit(v, MaxLimit)
			if err != nil {
				return q, false, err
			}
			q.Limit = n
		case "cursor":
			name, version, err := DecodeCursor(v)
			if err != nil {
				return q, false, err
			}
			q.AfterName, q.AfterVersion = name, version
		case "format":
			switch v {
			case "csv":
				asCSV = true
			case "json":
			default:
				return q, false, apierr.Bad("format %q: want json or csv", apierr.Clip(v))
			}
		}
	}
	return q, asCSV, nil
}

func encodeCursor(name, version string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("c1:" + name + "\x00" + version))
}

// DecodeCursor reads a cursor of the packs listing.
func DecodeCursor(c string) (string, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if s, ok := strings.CutPrefix(string(b), "c1:"); ok {
			if name, version, ok := strings.Cut(s, "\x00"); ok && apierr.Printable(name) && apierr.Printable(version) {
				return name, version, nil
			}
		}
	}
	return "", "", apierr.Bad("cursor %q is not one this server made", apierr.Clip(c))
}

// HistoryPage is GET /api/v1/compliance/history.
type HistoryPage struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Step   string    `json:"step"`
	Points []Counts  `json:"points"`
}

func (s *Service) history(w http.ResponseWriter, req *http.Request) error {
	p, err := apierr.Query(req.URL.RawQuery, "from", "to", "step")
	if err != nil {
		return err
	}
	to := s.now().UTC()
	from := to.Add(-30 * 24 * time.Hour)
	step := s.cfg.snapshotEvery()
	for k, v := range p {
		switch k {
		case "from", "to":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return apierr.Bad("%s %q: want an RFC 3339 time like 2026-01-02T15:04:05Z", k, apierr.Clip(v))
			}
			if k == "from" {
				from = t
			} else {
				to = t
			}
		case "step":
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Minute {
				return apierr.Bad("step %q: want a duration of a minute or more, like 1h", apierr.Clip(v))
			}
			step = d
		}
	}
	if to.Before(from) {
		return apierr.Bad("to is before from")
	}
	pts, err := s.History(req.Context(), from, to, step)
	if err != nil {
		return err
	}
	apierr.JSON(w, http.StatusOK, HistoryPage{From: from, To: to, Step: step.String(), Points: pts})
	return nil
}

func (s *Service) getRules(w http.ResponseWriter, req *http.Request) error {
	if req.URL.RawQuery != "" {
		return apierr.Bad("rules takes no parameters")
	}
	return apierr.Reply(w, http.StatusOK)(s.Rules(req.Context()))
}

func (s *Service) putRules(w http.ResponseWriter, req *http.Request) error {
	req = registry.WithRequestActor(req)
	var body rulesDoc
	if err := apierr.DecodeJSON(req.Body, &body, maxRulesBody); err != nil {
		return err
	}
	if body.Rules == nil {
		return apierr.Bad(`want {"rules": [...]} (an empty list removes every report-only rule)`)
	}
	if err := Validate(body.Rules, "rules"); err != nil {
		return apierr.Bad("%v", err)
	}
	return apierr.Reply(w, http.StatusOK)(s.PutRules(req.Context(), body.Rules))
}
