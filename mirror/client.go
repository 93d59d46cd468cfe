package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/storage"
)

// Client is the mirror API of a running packreg, for the CLI. Refusals
// come back as *apierr.Error, with the server's status and code.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient talks to the server at base (http://host:port).
func NewClient(base string, hc *http.Client) *Client {
	return &Client{base: strings.TrimRight(base, "/"), hc: hc}
}

func kindPrefix(kind string) string { return prefixOf(kind) }

// Create adds a mirror or upstream (set.Kind).
func (c *Client) Create(ctx context.Context, set Settings) (*View, error) {
	var v View
	return &v, c.do(ctx, http.MethodPost, kindPrefix(set.Kind), nil, set, &v)
}

// List returns the remotes of kind.
func (c *Client) List(ctx context.Context, kind string) ([]View, error) {
	var out struct{ Items []View }
	return out.Items, c.do(ctx, http.MethodGet, kindPrefix(kind), nil, nil, &out)
}

// Find returns the remote of kind whose id or name is ref.
func (c *Client) Find(ctx context.Context, kind, ref string) (*View, error) {
	list, err := c.List(ctx, kind)
	if err != nil {
		return nil, err
	}
	for _, v := range list {
		if v.ID == ref || v.Name == ref {
			return &v, nil
		}
	}
	return nil, apierr.New(http.StatusNotFound, apierr.NotFound, "no %s with id or name %q", kind, ref)
}

// Sync starts a sync and returns its run id.
func (c *Client) Sync(ctx context.Context, kind, id string) (int64, error) {
	var out struct {
		Run int64 `json:"run"`
	}
	return out.Run, c.do(ctx, http.MethodPost, kindPrefix(kind)+"/"+url.PathEscape(id)+"/sync", nil, nil, &out)
}

// Run returns one run.
func (c *Client) Run(ctx context.Context, kind, id string, run int64) (*RunView, error) {
	var v RunView
	return &v, c.do(ctx, http.MethodGet, kindPrefix(kind)+"/"+url.PathEscape(id)+"/runs/"+strconv.FormatInt(run, 10), nil, nil, &v)
}

// Runs returns the newest runs of a remote.
func (c *Client) Runs(ctx context.Context, kind, id string, limit int) ([]RunView, error) {
	var out struct{ Items []RunView }
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	return out.Items, c.do(ctx, http.MethodGet, kindPrefix(kind)+"/"+url.PathEscape(id)+"/runs", q, nil, &out)
}

// Parity runs a parity check of one remote (every mirror when id is "").
func (c *Client) Parity(ctx context.Context, id string) (*ParityResult, error) {
	var out ParityResult
	var body any
	if id != "" {
		body = map[string]string{"mirror": id}
	}
	return &out, c.do(ctx, http.MethodPost, ParityPrefix, nil, body, &out)
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxListingBytes))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var env apierr.Envelope
		if json.Unmarshal(b, &env) == nil && env.Error != nil {
			env.Error.Status = resp.StatusCode
			return env.Error
		}
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(clip(string(b))))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// Kinds, for callers outside the package.
const (
	KindMirror   = storage.MirrorPush
	KindUpstream = storage.MirrorPull
)
