package mirror

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/internal/restclient"
	"github.com/packreg/packreg/storage"
)

// Client is the mirror API of a running packreg, for the CLI. Refusals
// come back as *apierr.Error, with the server's status and code.
type Client struct {
	api *restclient.Client
}

// NewClient talks to the server at base (http://host:port).
func NewClient(base string, hc *http.Client) *Client {
	return &Client{api: restclient.New(base, hc, restclient.WithMaxAnswer(maxListingBytes))}
}

func kindPrefix(kind string) string { return prefixOf(kind) }

// Create adds a mirror or upstream (set.Kind).
func (c *Client) Create(ctx context.Context, set Settings) (*View, error) {
	var v View
	return &v, c.api.Do(ctx, http.MethodPost, kindPrefix(set.Kind), nil, set, &v)
}

// List returns the remotes of kind.
func (c *Client) List(ctx context.Context, kind string) ([]View, error) {
	var out struct{ Items []View }
	return out.Items, c.api.Do(ctx, http.MethodGet, kindPrefix(kind), nil, nil, &out)
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
	return out.Run, c.api.Do(ctx, http.MethodPost, kindPrefix(kind)+"/"+url.PathEscape(id)+"/sync", nil, nil, &out)
}

// Run returns one run.
func (c *Client) Run(ctx context.Context, kind, id string, run int64) (*RunView, error) {
	var v RunView
	return &v, c.api.Do(ctx, http.MethodGet, kindPrefix(kind)+"/"+url.PathEscape(id)+"/runs/"+strconv.FormatInt(run, 10), nil, nil, &v)
}

// Runs returns the newest runs of a remote.
func (c *Client) Runs(ctx context.Context, kind, id string, limit int) ([]RunView, error) {
	var out struct{ Items []RunView }
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	return out.Items, c.api.Do(ctx, http.MethodGet, kindPrefix(kind)+"/"+url.PathEscape(id)+"/runs", q, nil, &out)
}

// Parity runs a parity check of one remote (every mirror when id is "").
func (c *Client) Parity(ctx context.Context, id string) (*ParityResult, error) {
	var out ParityResult
	var body any
	if id != "" {
		body = map[string]string{"mirror": id}
	}
	return &out, c.api.Do(ctx, http.MethodPost, ParityPrefix, nil, body, &out)
}

// Kinds, for callers outside the package.
const (
	KindMirror   = storage.MirrorPush
	KindUpstream = storage.MirrorPull
)
