package conformance

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Authentication and authorization against the real binary, over the wire:
// htpasswd users, a robot made through the API, the token flow, and every
// refusal the issue lists. Users:
//
//	root   admin
//	alice  acme/**: every action
//	bob    acme/**: pull, push (moving a tag needs overwrite: he has none)
//	carol  pull on everything but private/**
//
// No anonymous actions.

const authConfig = `
auth:
  htpasswd: %s
  admins: [root]
  rules:
    - {repositories: ["acme/**"], users: [alice], actions: [pull, push, overwrite, delete, lifecycle]}
    - {repositories: ["acme/**"], users: [bob, "robot:ci"], actions: [pull, push]}
    - {repositories: ["private/**"], users: ["*"], actions: []}
    - {repositories: ["**"], users: ["*"], actions: [pull]}
  login: {max_failures: 4, window: 10m}
`

type authServer struct {
	*server
	t        *testing.T
	htpasswd string
	users    map[string]string
}

func startAuthServer(t *testing.T) *authServer {
	t.Helper()
	return startAuthServerWith(t, authConfig, "root", "alice", "bob", "carol")
}

// startAuthServerWith starts packreg with config (a format with one %s,
// the htpasswd path) and users, each with the password USER-pw.
func startAuthServerWith(t *testing.T, config string, users ...string) *authServer {
	t.Helper()
	dir := t.TempDir()
	a := &authServer{t: t, htpasswd: filepath.Join(dir, "htpasswd"), users: map[string]string{}}
	for _, u := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		a.users[u] = u + ":" + string(h) + "\n"
	}
	a.writeUsers()
	cfg := filepath.Join(dir, "packreg.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, config, a.htpasswd), 0o600); err != nil {
		t.Fatal(err)
	}
	a.server = startServer(t, "--config", cfg)
	a.dumpLogOnFailure()
	return a
}

func (a *authServer) writeUsers() {
	var b strings.Builder
	for _, l := range a.users {
		b.WriteString(l)
	}
	if err := os.WriteFile(a.htpasswd, []byte(b.String()), 0o600); err != nil {
		a.t.Fatal(err)
	}
}

// call sends one request; cred is "", "basic:USER" (password USER-pw),
// "basic:USER:PASSWORD" or "bearer:TOKEN".
func (a *authServer) call(cred, method, path string, body []byte, hdr ...string) rawResponse {
	a.t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	if kind, rest, _ := strings.Cut(cred, ":"); kind == "basic" {
		user, pass := rest, ""
		if i := strings.LastIndexByte(rest, ':'); i > 0 && !strings.HasSuffix(rest[:i], "robot") {
			user, pass = rest[:i], rest[i+1:]
		} else {
			pass = rest + "-pw"
		}
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	} else if kind == "bearer" {
		h.Set("Authorization", "Bearer "+rest)
	}
	return rawRequest(a.t, a.Addr, method, path, a.Addr, h, body)
}

func (a *authServer) token(cred string, scopes ...string) string {
	a.t.Helper()
	r := a.call(cred, "GET", "/token?"+url.Values{"service": {"packreg"}, "scope": scopes}.Encode(), nil)
	var ans struct {
		Token string `json:"token"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &ans) != nil || ans.Token == "" {
		a.t.Fatalf("token %s %v: %d %s", cred, scopes, r.status, r.body)
	}
	return ans.Token
}

func blobDigest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// pushImage pushes config as a blob, then a manifest of it under tag.
func (a *authServer) pushImage(cred, repo, tag string, config []byte) rawResponse {
	a.t.Helper()
	d := blobDigest(config)
	if r := a.call(cred, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d, config, "Content-Type", "application/octet-stream"); r.status != 201 {
		return r
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, d, len(config))
	return a.call(cred, "PUT", "/v2/"+repo+"/manifests/"+tag, []byte(m), "Content-Type", "application/vnd.oci.image.manifest.v1+json")
}

func wantAnswer(t *testing.T, what string, r rawResponse, status int, code string) {
	t.Helper()
	if r.status != status || code != "" && r.code() != code {
		t.Errorf("%s: %d %s, want %d %s: %s", what, r.status, r.code(), status, code, clip(string(r.body)))
	}
}

// jws signs a JWT by hand: the forgeries a client could send.
func jws(t *testing.T, alg string, key any, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	c, _ := json.Marshal(claims)
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	switch alg {
	case "none":
		return in + "."
	case "HS256":
		m := hmac.New(sha256.New, key.([]byte))
		m.Write([]byte(in))
		return in + "." + enc.EncodeToString(m.Sum(nil))
	case "ES256":
		sum := sha256.Sum256([]byte(in))
		r, s, err := ecdsa.Sign(rand.Reader, key.(*ecdsa.PrivateKey), sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return in + "." + enc.EncodeToString(sig)
	}
	t.Fatalf("alg %s", alg)
	return ""
}

func TestAuthOverTheWire(t *testing.T) {
	a := startAuthServer(t)
	wantAnswer(t, "alice pushes acme/app:v1", a.pushImage("basic:alice", "acme/app", "v1", []byte(`{"v":1}`)), 201, "")
	wantAnswer(t, "alice pushes acme/other:v1", a.pushImage("basic:alice", "acme/other", "v1", []byte(`{"o":1}`)), 201, "")
	private := []byte(`{"private":1}`)
	wantAnswer(t, "root pushes private/x:v1", a.pushImage("basic:root", "private/x", "v1", private), 201, "")

	// No credentials: the challenge names the realm and the scope.
	r := a.call("", "GET", "/v2/acme/app/manifests/v1", nil)
	wantAnswer(t, "no credentials", r, 401, "UNAUTHORIZED")
	if ch := r.header.Get("WWW-Authenticate"); ch != `Bearer realm="http://`+a.Addr+`/token",service="packreg",scope="repository:acme/app:pull"` {
		t.Errorf("challenge %q", ch)
	}
	wantAnswer(t, "no credentials: /v2/", a.call("", "GET", "/v2/", nil), 401, "UNAUTHORIZED")

	carol := a.token("basic:carol", "repository:acme/app:pull,push")
	bob := a.token("basic:bob", "repository:acme/app:pull,push")
	mf := "/v2/acme/app/manifests/v1"
	wantAnswer(t, "pull-only token pulls", a.call("bearer:"+carol, "GET", mf, nil), 200, "")
	r = a.call("bearer:"+carol, "POST", "/v2/acme/app/blobs/uploads/", nil)
	wantAnswer(t, "pull-only token pushes", r, 401, "UNAUTHORIZED")
	if ch := r.header.Get("WWW-Authenticate"); !strings.HasSuffix(ch, `scope="repository:acme/app:pull,push",error="insufficient_scope"`) {
		t.Errorf("insufficient scope challenge %q", ch)
	}
	wantAnswer(t, "pull-only token DELETEs", a.call("bearer:"+carol, "DELETE", mf, nil), 401, "UNAUTHORIZED")
	wantAnswer(t, "token for acme/app on acme/other", a.call("bearer:"+bob, "GET", "/v2/acme/other/manifests/v1", nil), 401, "UNAUTHORIZED")
	wantAnswer(t, "Basic without the right", a.call("basic:carol", "DELETE", mf, nil), 403, "DENIED")
	wantAnswer(t, "push-only identity moves a tag", a.pushImage("basic:bob", "acme/app", "v1", []byte(`{"v":2}`)), 403, "DENIED")
	wantAnswer(t, "push-only token moves a tag", a.pushImage("bearer:"+bob, "acme/app", "v1", []byte(`{"v":3}`)), 401, "UNAUTHORIZED")
	wantAnswer(t, "push-only identity creates a tag", a.pushImage("bearer:"+bob, "acme/app", "v2", []byte(`{"v":4}`)), 201, "")

	// A mount from a repository bob cannot read is an ordinary upload.
	r = a.call("basic:bob", "POST", "/v2/acme/app/blobs/uploads/?mount="+blobDigest(private)+"&from=private/x", nil)
	wantAnswer(t, "mount from an unreadable repository", r, 202, "")
	wantAnswer(t, "the blob stayed out", a.call("basic:bob", "HEAD", "/v2/acme/app/blobs/"+blobDigest(private), nil), 404, "")
	if cat := a.call("basic:carol", "GET", "/v2/_catalog", nil); !bytes.Contains(cat.body, []byte(`"acme/app"`)) || bytes.Contains(cat.body, []byte("private")) {
		t.Errorf("carol's catalog: %s", cat.body)
	}

	// Forged and stale tokens, signed with the server's own key where the
	// signature is not the point.
	pemBytes, err := os.ReadFile(filepath.Join(a.Data, "token-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pemBytes)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key := k.(*ecdsa.PrivateKey)
	pub, _ := x509.MarshalPKIXPublicKey(key.Public())
	now := time.Now()
	claims := func(k string, v any) map[string]any {
		c := map[string]any{"iss": "packreg", "aud": "packreg", "sub": "alice", "iat": now.Unix(), "nbf": now.Unix(),
			"exp": now.Add(time.Minute).Unix(), "access": []map[string]any{{"type": "repository", "name": "acme/app", "actions": []string{"pull"}}}}
		if k != "" {
			c[k] = v
		}
		return c
	}
	wantAnswer(t, "a token of the server's key", a.call("bearer:"+jws(t, "ES256", key, claims("", nil)), "GET", mf, nil), 200, "")
	for name, tok := range map[string]string{
		"alg none":                  jws(t, "none", nil, claims("", nil)),
		"HS256 with the public key": jws(t, "HS256", pub, claims("", nil)),
		"expired":                   jws(t, "ES256", key, claims("exp", now.Add(-2*time.Minute).Unix())),
		"not yet valid":             jws(t, "ES256", key, claims("nbf", now.Add(2*time.Minute).Unix())),
		"wrong audience":            jws(t, "ES256", key, claims("aud", "elsewhere")),
	} {
		r := a.call("bearer:"+tok, "GET", mf, nil)
		wantAnswer(t, name, r, 401, "UNAUTHORIZED")
		if ch := r.header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="invalid_token"`) {
			t.Errorf("%s: challenge %q", name, ch)
		}
	}

	// An unknown field in an admin body.
	wantAnswer(t, "unknown admin field", a.call("basic:root", "POST", "/api/v1/robots",
		[]byte(`{"name":"ci","rules":[{"repositories":["**"],"actions":["pull"]}],"isAdmin":true}`), "Content-Type", "application/json"), 400, "BAD_REQUEST")
	wantAnswer(t, "admin API for a user", a.call("basic:alice", "GET", "/api/v1/robots", nil), 403, "DENIED")

	// A removed user's unexpired token is refused on its next request.
	tok := a.token("basic:carol", "repository:acme/app:pull")
	delete(a.users, "carol")
	a.writeUsers()
	wantAnswer(t, "removed user's token", a.call("bearer:"+tok, "GET", mf, nil), 401, "UNAUTHORIZED")

	// A robot: made by root, used, disabled.
	r = a.call("basic:root", "POST", "/api/v1/robots", []byte(`{"name":"ci","rules":[{"repositories":["ci/**"],"actions":["pull","push"]}]}`),
		"Content-Type", "application/json")
	wantAnswer(t, "create robot", r, 201, "")
	var robot struct{ Secret string }
	json.Unmarshal(r.body, &robot)
	rcred := "basic:robot:ci:" + robot.Secret
	wantAnswer(t, "robot pushes ci/app", a.pushImage(rcred, "ci/app", "v1", []byte(`{"ci":1}`)), 201, "")
	rtok := a.token(rcred, "repository:ci/app:pull,push")
	wantAnswer(t, "robot's token", a.call("bearer:"+rtok, "GET", "/v2/ci/app/manifests/v1", nil), 200, "")
	wantAnswer(t, "disable robot", a.call("basic:root", "POST", "/api/v1/robots/ci/disable", nil), 200, "")
	wantAnswer(t, "disabled robot's token", a.call("bearer:"+rtok, "GET", "/v2/ci/app/manifests/v1", nil), 401, "UNAUTHORIZED")
	wantAnswer(t, "disabled robot's secret", a.call(rcred, "GET", "/v2/ci/app/manifests/v1", nil), 401, "UNAUTHORIZED")

	// Brute force: failures counted per address, then 429 with
	// Retry-After. The disabled robot's refused login above was the first
	// of max_failures (4).
	var last rawResponse
	failures := 0
	for failures < 10 {
		last = a.call("basic:alice:guess", "GET", "/v2/", nil)
		if last.status != 401 {
			break
		}
		failures++
	}
	wantAnswer(t, fmt.Sprintf("after %d failures", failures), last, 429, "TOOMANYREQUESTS")
	if failures != 3 || last.header.Get("Retry-After") == "" {
		t.Errorf("429 after %d more failures (want 3), Retry-After %q", failures, last.header.Get("Retry-After"))
	}
	wantAnswer(t, "the right password while limited", a.call("basic:alice", "GET", "/v2/", nil), 429, "TOOMANYREQUESTS")
}

// TestAuthStartupErrors: credentials beyond loopback need TLS (or
// --insecure-http); an htpasswd with another hash kind does not start.
func TestAuthStartupErrors(t *testing.T) {
	dir := t.TempDir()
	hp := filepath.Join(dir, "htpasswd")
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, packregBin, args...)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		err := cmd.Run()
		return stderr.String(), err
	}
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	os.WriteFile(hp, append([]byte("alice:"), h...), 0o600)
	cfg := filepath.Join(dir, "auth.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, "auth:\n  htpasswd: %s\n", hp), 0o600)
	if stderr, err := run("serve", "--config", cfg, "--addr", "0.0.0.0:0", "--data", dir); err == nil || !strings.Contains(stderr, "tls is not configured") {
		t.Errorf("auth on 0.0.0.0 without TLS: %v %q", err, stderr)
	}
	os.WriteFile(hp, []byte("alice:$apr1$salt$c2VjcmV0aGFzaA\n"), 0o600)
	if stderr, err := run("serve", "--config", cfg, "--data", dir); err == nil || !strings.Contains(stderr, "bcrypt") || strings.Contains(stderr, "c2VjcmV0aGFzaA") {
		t.Errorf("MD5 htpasswd: %v %q", err, stderr)
	}
	if out, err := exec.Command(packregBin, "config", "print", "--config", cfg, "--data", dir).Output(); err != nil || !strings.Contains(string(out), "htpasswd: "+hp) {
		t.Errorf("config print: %v\n%s", err, out)
	}
}
