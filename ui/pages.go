package ui

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/packreg/packreg/compliance"
	"github.com/packreg/packreg/storage"
)

// errBad is a request the pages refuse with 400.
var errBad = errors.New("bad request")

type overviewData struct {
	Title    string
	Summary  *compliance.Summary
	Coverage []coverage
	Trend    *trend
	Name     string
	Listing  []compliance.Item
	Next     string
	Audit    []storage.AuditRecord
	Wide     bool // the trend and the audit records are shown
	Message  string
}

type coverage struct {
	Type     string
	Versions int64
}

func (u *UI) overview(req *http.Request) (string, any, int, error) {
	ctx := req.Context()
	d := overviewData{Title: "Compliance at a glance"}
	q := storage.ComplianceQuery{Limit: failingPage + 1}
	no := false
	q.Compliant = &no
	for k, vs := range req.URL.Query() {
		v := vs[0]
		switch {
		case len(vs) != 1:
			return badPage("parameter " + k + " given more than once")
		case k == "name":
			if v == "" {
				continue
			}
			if !printable(v) {
				return badPage("a name is printable ASCII without spaces, at most 255 characters")
			}
			d.Name, q.NamePrefix, q.Compliant = v, v, nil
		case k == "cursor":
			name, version, err := compliance.DecodeCursor(v)
			if err != nil {
				return badPage("that page link is not one this server made")
			}
			q.AfterName, q.AfterVersion = name, version
		default:
			return badPage("unknown parameter " + strconv.Quote(clip(k)))
		}
	}
	sum, err := u.comp.Summary(ctx, "")
	if err != nil {
		return "", nil, 0, err
	}
	d.Summary = sum
	for t, n := range sum.AttestationCoverage {
		d.Coverage = append(d.Coverage, coverage{t, n})
	}
	slices.SortFunc(d.Coverage, func(a, b coverage) int { return strings.Compare(a.Type, b.Type) })
	page, err := u.comp.Packs(ctx, storage.ComplianceQuery{Compliant: q.Compliant, NamePrefix: q.NamePrefix,
		AfterName: q.AfterName, AfterVersion: q.AfterVersion, Limit: failingPage})
	if err != nil {
		return "", nil, 0, err
	}
	d.Listing, d.Next = page.Items, page.Next
	d.Wide = u.wide
	if u.wide {
		now := u.now().UTC()
		pts, err := u.comp.History(ctx, now.Add(-30*24*time.Hour), now, 0)
		if err != nil {
			return "", nil, 0, err
		}
		d.Trend = newTrend(pts)
		if d.Audit, err = u.st.ListAudit(ctx, storage.AuditQuery{Limit: auditShown}); err != nil {
			return "", nil, 0, err
		}
	}
	return "overview.html", d, http.StatusOK, nil
}

func badPage(msg string) (string, any, int, error) {
	return "error.html", map[string]any{"Title": "Bad request", "Message": msg}, http.StatusBadRequest, nil
}

func printable(s string) bool {
	if len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// trend is the counts over time drawn as two SVG polylines.
type trend struct {
	Compliant, Failing string // "x,y x,y ..." in a 600×160 box
	Max                int64
	From, To           time.Time
	Points             int
}

const chartW, chartH = 600, 160

func newTrend(pts []compliance.Counts) *trend {
	if len(pts) == 0 {
		return nil
	}
	t := &trend{From: pts[0].At, To: pts[len(pts)-1].At, Points: len(pts)}
	for _, p := range pts {
		t.Max = max(t.Max, p.Compliant, p.Failing)
	}
	line := func(v func(compliance.Counts) int64) string {
		var b strings.Builder
		for i, p := range pts {
			x := 0
			if len(pts) > 1 {
				x = i * chartW / (len(pts) - 1)
			}
			y := chartH
			if t.Max > 0 {
				y = chartH - int(v(p)*chartH/t.Max)
			}
			fmt.Fprintf(&b, "%d,%d ", x, y)
		}
		if len(pts) == 1 { // a point is a flat line across
			fmt.Fprintf(&b, "%d,%d", chartW, chartH-int(v(pts[0])*chartH/max(t.Max, 1)))
		}
		return strings.TrimSpace(b.String())
	}
	t.Compliant = line(func(c compliance.Counts) int64 { return c.Compliant })
	t.Failing = line(func(c compliance.Counts) int64 { return c.Failing })
	return t
}

type versionView struct {
	compliance.Item
	Signatures []Signature
	Lifecycle  []storage.PackStatusChange
}

type packData struct {
	Title    string
	Name     string
	Versions []versionView
	More     bool
}

func (u *UI) pack(req *http.Request) (string, any, int, error) {
	ctx := req.Context()
	name := req.PathValue("name")
	if !printable(name) || name == "" || req.URL.RawQuery != "" {
		return badPage("a pack page is /ui/packs/NAME, without parameters")
	}
	vs, err := u.st.ListPackVersions(ctx, storage.PackQuery{Name: name, Limit: versionPage + 1})
	if err != nil {
		return "", nil, 0, err
	}
	if len(vs) == 0 {
		return "error.html", map[string]any{"Title": "No such pack", "Message": "No pack is named " + name + "."}, http.StatusNotFound, nil
	}
	d := packData{Title: name, Name: name, More: len(vs) > versionPage}
	vs = vs[:min(len(vs), versionPage)]
	page, err := u.comp.Packs(ctx, storage.ComplianceQuery{NamePrefix: name, Limit: compliance.MaxLimit})
	if err != nil {
		return "", nil, 0, err
	}
	items := map[string]compliance.Item{}
	for _, it := range page.Items {
		if it.Name == name {
			items[it.Version] = it
		}
	}
	hist, err := u.st.PackLifecycle(ctx, name, "")
	if err != nil {
		return "", nil, 0, err
	}
	for _, v := range vs {
		if v.Status == storage.PackDeleted {
			continue
		}
		it, ok := items[v.Version]
		if !ok { // not evaluated yet
			it = compliance.Item{Name: v.Name, Version: v.Version, Digest: string(v.Digest), Lifecycle: v.Status, Verification: "not evaluated yet"}
		}
		vv := versionView{Item: it}
		if vv.Signatures, err = u.rep.Signatures(ctx, v.Name, v.Digest); err != nil {
			return "", nil, 0, err
		}
		for _, h := range hist {
			if h.Version == v.Version {
				vv.Lifecycle = append(vv.Lifecycle, h)
			}
		}
		d.Versions = append(d.Versions, vv)
	}
	return "pack.html", d, http.StatusOK, nil
}
