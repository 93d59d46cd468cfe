package audit

import (
	"encoding/base64"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/internal/routes"
	"github.com/packreg/packreg/storage"
)

// Prefix is the root of the audit API.
const Prefix = "/api/v1/audit"

// Page sizes of the listing.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Record is an audit record as the API shows it.
type Record struct {
	ID       int64             `json:"id"`
	At       time.Time         `json:"at"`
	Actor    string            `json:"actor"`
	Action   string            `json:"action"`
	Target   string            `json:"target"`
	Digest   string            `json:"digest,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
	PrevHash string            `json:"prevHash"`
	Hash     string            `json:"hash"`
}

// List is a page of GET /api/v1/audit.
type List struct {
	Items []Record `json:"items"`
	Next  string   `json:"next,omitempty"`
}

// Head is the end of the chain.
type Head struct {
	ID   int64  `json:"id"`
	Hash string `json:"hash"`
}

// Verification is GET /api/v1/audit/verify. It answers 200 either way: a
// broken chain is a finding, not a failed request.
type Verification struct {
	OK          bool   `json:"ok"`
	Records     int64  `json:"records"`
	Head        Head   `json:"head"`
	FirstBroken int64  `json:"firstBroken,omitempty"`
	Reason      string `json:"reason,omitempty"`
	// Pending counts the changes committed whose records are not written
	// yet (they are queued, and written within seconds); not a break.
	Pending int64 `json:"pending"`
}

// Routes are the audit trail's rows of the route table (it is read-only):
//
//	GET /api/v1/audit?since=&action=&target=&limit=&cursor=   newest first; target matches by prefix, since is RFC 3339
//	GET /api/v1/audit/verify                                  the chain checked end to end
func Routes(log Log, logger *slog.Logger) []routes.Route {
	h := &handler{log: log}
	return []routes.Route{
		routes.Get(Prefix, apierr.Handler(logger, h.list)),
		routes.Get(Prefix+"/verify", apierr.Handler(logger, h.verify)),
	}
}

// Handler serves Routes alone, for tests and a server with this API only.
func Handler(log Log, logger *slog.Logger) http.Handler {
	return routes.Handler(apierr.NotFoundHandler(), apierr.NotAllowedHandler, Routes(log, logger)...)
}

type handler struct{ log Log }

func (h *handler) list(w http.ResponseWriter, req *http.Request) error {
	q, err := listQuery(req.URL.RawQuery)
	if err != nil {
		return err
	}
	limit := q.Limit
	q.Limit++ // one more tells whether there is a next page
	recs, err := h.log.ListAudit(req.Context(), q)
	if err != nil {
		return err
	}
	out := List{Items: make([]Record, 0, min(len(recs), limit))}
	for i, r := range recs {
		if i == limit {
			out.Next = encodeCursor(recs[i-1].ID)
			break
		}
		out.Items = append(out.Items, Record{ID: r.ID, At: r.At, Actor: r.Actor, Action: r.Action, Target: r.Target,
			Digest: string(r.Digest), Details: r.Details, PrevHash: r.PrevHash, Hash: r.Hash})
	}
	apierr.JSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) verify(w http.ResponseWriter, req *http.Request) error {
	if req.URL.RawQuery != "" {
		return apierr.New(http.StatusBadRequest, apierr.BadRequest, "verify takes no parameters")
	}
	v, err := storage.VerifyAudit(req.Context(), h.log)
	if err != nil {
		return err
	}
	out := Verification{OK: v.OK, Records: v.Records, Head: Head(v.Head), FirstBroken: v.FirstBroken, Reason: v.Reason}
	if out.Pending, err = h.log.CountPendingEvents(req.Context(), storage.AuditConsumer); err != nil {
		return err
	}
	apierr.JSON(w, http.StatusOK, out)
	return nil
}

func listQuery(raw string) (storage.AuditQuery, error) {
	q := storage.AuditQuery{Limit: DefaultLimit}
	params, err := apierr.Query(raw, "since", "action", "target", "limit", "cursor")
	if err != nil {
		return q, err
	}
	for k, val := range params {
		switch k {
		case "since":
			t, err := time.Parse(time.RFC3339Nano, val)
			if err != nil {
				return q, apierr.Bad("since %q: want an RFC 3339 time like 2026-01-02T15:04:05Z", apierr.Clip(val))
			}
			q.Since = t
		case "action":
			if !apierr.Printable(val) {
				return q, apierr.Bad("action %q: want an action like manifest.push", apierr.Clip(val))
			}
			q.Action = val
		case "target":
			// Targets are repository names, tags and config sections: ASCII,
			// which the store's prefix range relies on.
			if !apierr.Printable(val) {
				return q, apierr.Bad("target %q: want the start of a target like acme/rules:1.2.0", apierr.Clip(val))
			}
			q.TargetPrefix = val
		case "limit":
			n, err := apierr.ParseLimit(val, MaxLimit)
			if err != nil {
				return q, err
			}
			q.Limit = n
		case "cursor":
			id, err := decodeCursor(val)
			if err != nil {
				return q, err
			}
			q.Before = id
		}
	}
	return q, nil
}

func encodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("a1:" + strconv.FormatInt(id, 10)))
}

func decodeCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if s, ok := strings.CutPrefix(string(b), "a1:"); ok {
			if id, err := strconv.ParseInt(s, 10, 64); err == nil && id > 0 {
				return id, nil
			}
		}
	}
	return 0, apierr.Bad("cursor %q is not one this server made", apierr.Clip(c))
}
