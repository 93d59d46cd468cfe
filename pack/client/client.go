// Package client is a Go client of packreg's REST API (/api/v1/packs and
// /api/v1/audit): what `packreg pack` and `packreg audit` use. It speaks
// the wire types of packages pack and audit, and returns API errors as
// *apierr.Error, so callers can test codes.
//
// client imports pack, audit and internal/apierr; it must not import
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
	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/pack"
)

// Client talks to one server.
type Client struct {
	base string
	hc   *http.Client
}

// New returns a client of the server at base (http://host:port). hc nil
// means http.DefaultClient.
func New(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(base, "/"), hc: hc}
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+pack.Prefix, pr)
	if err != nil {
		pr.Close()
		return nil, false, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	var out pack.Version
	status, err := c.send(req, &out)
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
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	p := pack.Prefix + "/" + name + "/lifecycle"
	if version != "" {
		p = pack.Prefix + "/" + name + "/versions/" + version + "/lifecycle"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+p, strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if version != "" {
		var v pack.Version
		_, err := c.send(req, &v)
		return []pack.Version{v}, err
	}
	var vs pack.Versions
	_, err = c.send(req, &vs)
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
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	_, err = c.send(req, out)
	return err
}

// send runs req and decodes a 2xx answer into out. Other answers become
// *apierr.Error when they have the API's error shape.
func (c *Client) send(req *http.Request, out any) (int, error) {
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: reading the answer: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode/100 != 2 {
		var env apierr.Envelope
		if json.Unmarshal(body, &env) == nil && env.Error != nil && env.Error.Code != "" {
			env.Error.Status = resp.StatusCode
			return resp.StatusCode, env.Error
		}
		return resp.StatusCode, fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: decoding the answer: %w", req.Method, req.URL.Path, err)
	}
	return resp.StatusCode, nil
}
