package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"golang.org/x/crypto/bcrypt"
)

const secAuth = "Auth cost (second server, auth on, anonymous may pull+push; one client)"

const authRepo = "bench/auth"

// authSuite measures what authentication costs on manifest GET and a
// 1 KiB blob push: one server with an htpasswd user (bcrypt) that also
// lets anonymous callers pull and push, so the three credential kinds run
// the same rows on the same server: none, Basic on every request, and a
// Bearer token fetched from /token once, as clients do.
func (b *bench) authSuite(ctx context.Context) error {
	dir := filepath.Join(b.work, "auth-data")
	defer os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	const user, pass = "bench", "bench-password"
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	htpasswd, cfg := filepath.Join(dir, "htpasswd"), filepath.Join(dir, "packreg.yaml")
	if err := os.WriteFile(htpasswd, append([]byte(user+":"), append(hash, '\n')...), 0o600); err != nil {
		return err
	}
	yaml := fmt.Sprintf("auth:\n  htpasswd: %s\n  rules:\n    - {repositories: [\"**\"], users: [%s], actions: [pull, push]}\n  anonymous: [pull, push]\n", htpasswd, user)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		return err
	}
	srv, err := startServer(ctx, b.bin, []string{"--data", dir, "--config", cfg}, filepath.Join(b.work, "server-auth.log"))
	if err != nil {
		return b.failed(ctx, secAuth, "start the server with auth on", err)
	}
	defer srv.stop()
	// The rows' server CPU and liveness are this server's.
	main := b.srv
	b.srv = srv
	defer func() { b.srv = main }()

	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	tok, err := fetchToken(ctx, srv.base, basic, "repository:"+authRepo+":pull,push")
	if err != nil {
		return b.failed(ctx, secAuth, "token from /token", err)
	}
	modes := []struct{ name, authz string }{{"anonymous", ""}, {"Basic", basic}, {"Bearer token", "Bearer " + tok}}
	cs := make([]*client, len(modes))
	for i, m := range modes {
		if cs[i], err = newClient(srv.base); err != nil {
			return err
		}
		defer cs[i].close()
		cs[i].authz = m.authz
	}
	refs := newImageRefs()
	for _, blob := range [][]byte{refs.config, refs.layer} {
		if _, err := cs[0].pushSmall(ctx, authRepo, blob, sha256Digest(blob)); err != nil {
			return b.failed(ctx, secAuth, "push the manifest's blobs", err)
		}
	}
	if err := cs[0].putManifest(ctx, authRepo, "t", refs.manifest(0)); err != nil {
		return b.failed(ctx, secAuth, "push the manifest", err)
	}

	n := b.opt.ops
	// Warm every client's connection and the server's caches (the
	// htpasswd memo, the token key) so the first row is not the slow one.
	for _, c := range cs {
		for range 20 {
			if err := c.getManifest(ctx, authRepo, "t"); err != nil {
				return b.failed(ctx, secAuth, "warm up", err)
			}
		}
	}
	for i, m := range modes {
		label := "manifest GET by tag, " + m.name
		logf("%s: auth %s x%d", b.backend, label, n)
		r, err := b.load(ctx, n, 1, func(ctx context.Context, _ int) error { return cs[i].getManifest(ctx, authRepo, "t") })
		if err != nil {
			if err := b.failed(ctx, secAuth, label, err); err != nil {
				return err
			}
			continue
		}
		b.set(secAuth, label, rateCell(r))
	}
	for i, m := range modes {
		label := "1 KiB blob push (POST ?digest=), " + m.name
		bodies := make([][]byte, n)
		for j := range bodies {
			bodies[j] = genBytes(uint64(4_000_000_000+i*n+j), 1024)
		}
		logf("%s: auth %s x%d", b.backend, label, n)
		r, err := b.load(ctx, n, 1, func(ctx context.Context, j int) error {
			_, err := cs[i].pushSmall(ctx, authRepo, bodies[j], sha256Digest(bodies[j]))
			return err
		})
		if err != nil {
			if err := b.failed(ctx, secAuth, label, err); err != nil {
				return err
			}
			continue
		}
		b.set(secAuth, label, rateCell(r))
	}
	return nil
}

// fetchToken asks /token for scope with Basic credentials, as a client
// answering a Bearer challenge does.
func fetchToken(ctx context.Context, base, basic, scope string) (string, error) {
	q := url.Values{"service": {"packreg"}, "scope": {scope}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/token?"+q.Encode(), nil)
	req.Header.Set("Authorization", basic)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var ans struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&ans) != nil || ans.Token == "" {
		return "", fmt.Errorf("GET /token: status %d", resp.StatusCode)
	}
	return ans.Token, nil
}
