package compliance

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/packreg/packreg/internal/restclient"
)

// Client is the compliance API of a running packreg, for the CLI.
type Client struct {
	api *restclient.Client
}

// NewClient talks to the server at base (http://host:port).
func NewClient(base string, hc *http.Client) *Client {
	return &Client{api: restclient.New(base, hc)}
}

// Summary is GET /api/v1/compliance/summary.
func (c *Client) Summary(ctx context.Context, repositories string) (*Summary, error) {
	q := url.Values{}
	if repositories != "" {
		q.Set("repositories", repositories)
	}
	var out Summary
	return &out, c.api.Do(ctx, http.MethodGet, Prefix+"/summary", q, nil, &out)
}

// Packs is one page of GET /api/v1/compliance/packs; status is
// "compliant", "failing" or "".
func (c *Client) Packs(ctx context.Context, status, name, cursor string, limit int) (*Page, error) {
	q := url.Values{}
	for k, v := range map[string]string{"status": status, "name": name, "cursor": cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out Page
	return &out, c.api.Do(ctx, http.MethodGet, Prefix+"/packs", q, nil, &out)
}
