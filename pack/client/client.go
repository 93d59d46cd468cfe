// Package client is a Go client of packreg's REST API (/api/v1/packs and
// /api/v1/audit): what `packreg pack` and `packreg audit` use. It speaks
// the wire types of packages pack and audit over internal/restclient, and
// returns API errors as *apierr.Error, so callers can test codes.
//
// client imports pack, audit and internal/restclient; it must not import
// attest, mirror, compliance, cmd or a storage backend.
package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/packreg/packreg/audit"
	"github.com/packreg/packreg/internal/restclient"
	"github.com/packreg/packreg/pack"
)

// Client talks to one server.
type Client struct {
	api *restclient.Client
}

// New returns a client of the server at base (http://host:port). hc nil
// means http.DefaultClient.
func New(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{api: restclient.New(base, hc)}
}

// File is one file to publish, read from Path; Name is its name in the
// pack (default: the base name of Path).
type File struct {
	Name      string
	Path      string
	MediaType string // default: the server's pack file type
}

// Publish uploads md and files as one multipart request, streamed from
// disk. created is false when the server already had exactly this version.
func (c *Client) Publish(ctx context.Context, md pack.Metadata, files []File) (v *pack.Version, created bool, err error) {
	// A missing file is the caller's mistake: say so before a half-sent
	// request turns it into a transport error.
	for _, f := range files {
		if _, err := os.Stat(f.Path); err != nil {
			return nil, false, err
		}
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() { pw.CloseWithError(writeParts(mw, md, files)) }()
	req, err := c.api.NewRequest(ctx, http.MethodPost, pack.Prefix, nil, pr)
	if err != nil {
		pr.Close()
		return nil, false, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	var out pack.Version
	status, err := c.api.Send(req, &out)
	if err != nil {
		pr.Close()
		return nil, false, err
	}
	return &out, status == http.StatusCreated, nil
}

func writeParts(mw *multipart.Writer, md pack.Metadata, files []File) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="metadata"`)
	h.Set("Content-Type", "application/json")
	w, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(w).Encode(md); err != nil {
		return err
	}
	for _, f := range files {
		if err := writeFile(mw, f); err != nil {
			return err
		}
	}
	return mw.Close()
}

func writeFile(mw *multipart.Writer, f File) error {
	name := f.Name
	if name == "" {
		name = f.Path[strings.LastIndexAny(f.Path, `/\`)+1:]
	}
	src, err := os.Open(f.Path)
	if err != nil {
		return err
	}
	defer src.Close()
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, name))
	mt := f.MediaType
	if mt == "" {
		mt = "application/octet-stream"
	}
	h.Set("Content-Type", mt)
	w, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, src)
	return err
}

// ListQuery selects versions; empty fields use the server's defaults
// (status active, 100 per page).
type ListQuery struct {
	Status, Name, Label, Cursor string
	Limit                       int
}

// List returns one page of versions, newest first.
func (c *Client) List(ctx context.Context, q ListQuery) (*pack.VersionList, error) {
	var out pack.VersionList
	return &out, c.get(ctx, pack.Prefix, values(q.Limit, "status", q.Status, "name", q.Name, "label", q.Label, "cursor", q.Cursor), &out)
}

// Versions returns every version of a pack, in semver order.
func (c *Client) Versions(ctx context.Context, name string) (*pack.Versions, error) {
	var out pack.Versions
	return &out, c.get(ctx, pack.Prefix+"/"+name+"/versions", nil, &out)
}

// Version returns one version.
func (c *Client) Version(ctx context.Context, name, version string) (*pack.Version, error) {
	var out pack.Version
	return &out, c.get(ctx, pack.Prefix+"/"+name+"/versions/"+version, nil, &out)
}

// Manifest returns a version's manifest and resolved config.
func (c *Client) Manifest(ctx context.Context, name, version string) (*pack.ManifestView, error) {
	var out pack.ManifestView
	return &out, c.get(ctx, pack.Prefix+"/"+name+"/versions/"+version+"/manifest", nil, &out)
}

// SetLifecycle changes one version, or every version when version is "",
// and returns the versions afterwards.
func (c *Client) SetLifecycle(ctx context.Context, name, version string, r pack.LifecycleRequest) ([]pack.Version, error) {
	if version != "" {
		var v pack.Version
		err := c.api.Do(ctx, http.MethodPost, pack.Prefix+"/"+name+"/versions/"+version+"/lifecycle", nil, r, &v)
		return []pack.Version{v}, err
	}
	var vs pack.Versions
	err := c.api.Do(ctx, http.MethodPost, pack.Prefix+"/"+name+"/lifecycle", nil, r, &vs)
	return vs.Versions, err
}

// History returns the lifecycle history of a version, or of a whole pack.
func (c *Client) History(ctx context.Context, name, version string) (*pack.Lifecycle, error) {
	p := pack.Prefix + "/" + name + "/lifecycle"
	if version != "" {
		p = pack.Prefix + "/" + name + "/versions/" + version + "/lifecycle"
	}
	var out pack.Lifecycle
	return &out, c.get(ctx, p, nil, &out)
}

// AuditQuery selects audit records; Since is RFC 3339.
type AuditQuery struct {
	Since, Action, Target, Cursor string
	Limit                         int
}

// Audit returns one page of the audit trail, newest first.
func (c *Client) Audit(ctx context.Context, q AuditQuery) (*audit.List, error) {
	var out audit.List
	return &out, c.get(ctx, audit.Prefix, values(q.Limit, "since", q.Since, "action", q.Action, "target", q.Target, "cursor", q.Cursor), &out)
}

// VerifyAudit asks the server to verify the whole chain.
func (c *Client) VerifyAudit(ctx context.Context) (*audit.Verification, error) {
	var out audit.Verification
	return &out, c.get(ctx, audit.Prefix+"/verify", nil, &out)
}

// values is a query of the non-empty key, value pairs, and limit when set.
func values(limit int, kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	return v
}

func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	return c.api.Do(ctx, http.MethodGet, path, q, nil, out)
}
