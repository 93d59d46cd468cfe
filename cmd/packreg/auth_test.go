package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/packreg/packreg/audit"
	"github.com/packreg/packreg/auth"
	"github.com/packreg/packreg/internal/routes"
)

// The auth gate over the real wiring (wire: registry, packs, attest,
// mirrors, audit on SQLite and the disk store), over HTTP. Users:
//
//	root   admin
//	alice  acme/**: pull, push, overwrite, delete, lifecycle
//	bob    acme/**: pull, push (no overwrite, no delete)
//	carol  every repository but private/**: pull ("*" rules)
//
// and no anonymous actions.

type authEnv struct {
	t        *testing.T
	srv      *httptest.Server
	htpasswd string
	data     string
	users    map[string]string // name → htpasswd line
	app      *app
}

func htpasswdEntry(t *testing.T, user, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(h) + "\n"
}

func newAuthEnv(t *testing.T, change func(*Config)) *authEnv {
	t.Helper()
	dir := t.TempDir()
	e := &authEnv{t: t, htpasswd: filepath.Join(dir, "htpasswd"), users: map[string]string{}}
	for _, u := range []string{"root", "alice", "bob", "carol"} {
		e.users[u] = htpasswdEntry(t, u, u+"-pw")
	}
	e.writeUsers()
	a := testApp(t, func(c *Config) {
		c.Auth.Htpasswd = e.htpasswd
		c.Auth.Admins = []string{"root"}
		c.Auth.Rules = []auth.Rule{
			{Repositories: []string{"acme/**"}, Users: []string{"alice"}, Actions: []string{"pull", "push", "overwrite", "delete", "lifecycle"}},
			{Repositories: []string{"acme/**"}, Users: []string{"bob"}, Actions: []string{"pull", "push"}},
			{Repositories: []string{"private/**"}, Users: []string{"*"}, Actions: []string{}},
			{Repositories: []string{"**"}, Users: []string{"*"}, Actions: []string{"pull"}},
		}
		c.Auth.Login.MaxFailures = 5
		e.data = c.Data
		if change != nil {
			change(c)
		}
	})
	e.app = a
	e.srv = httptest.NewServer(a.handler)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *authEnv) writeUsers() {
	var b strings.Builder
	for _, line := range e.users {
		b.WriteString(line)
	}
	if err := os.WriteFile(e.htpasswd, []byte(b.String()), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// cred is how a request authenticates: "" none, "basic:user",
// "basic:user:password", or "bearer:TOKEN".
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) code() string {
	var env struct {
		Errors []struct{ Code string }
		Error  *struct{ Code string }
	}
	json.Unmarshal(r.body, &env)
	if len(env.Errors) > 0 {
		return env.Errors[0].Code
	}
	if env.Error != nil {
		return env.Error.Code
	}
	return ""
}

func (e *authEnv) do(cred, method, path string, body []byte, hdr ...string) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	switch kind, rest, _ := strings.Cut(cred, ":"); kind {
	case "basic":
		prefix := ""
		if strings.HasPrefix(rest, auth.RobotPrefix) {
			prefix, rest = auth.RobotPrefix, strings.TrimPrefix(rest, auth.RobotPrefix)
		}
		user, pass, ok := strings.Cut(rest, ":")
		if !ok {
			pass = user + "-pw"
		}
		user = prefix + user
		req.SetBasicAuth(user, pass)
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+rest)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

// token asks /token for scopes with Basic credentials (cred as in do).
func (e *authEnv) token(cred string, scopes ...string) string {
	e.t.Helper()
	q := url.Values{"service": {"packreg"}, "scope": scopes}
	r := e.do(cred, "GET", "/token?"+q.Encode(), nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("token for %s %v: %d %s", cred, scopes, r.status, r.body)
	}
	var ans tokenAnswer
	if err := json.Unmarshal(r.body, &ans); err != nil || ans.Token == "" || ans.AccessToken != ans.Token || ans.ExpiresIn != 300 {
		e.t.Fatalf("token answer %s: %v", r.body, err)
	}
	return ans.Token
}

// blob uploads content to repo monolithically; the digest and status.
func (e *authEnv) blob(cred, repo string, content []byte) (string, reply) {
	sum := sha256.Sum256(content)
	d := "sha256:" + hex.EncodeToString(sum[:])
	return d, e.do(cred, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d, content, "Content-Type", "application/octet-stream")
}

// manifest is an image manifest whose config is content (pushed first).
func (e *authEnv) manifest(cred, repo, tag string, content []byte) reply {
	e.t.Helper()
	d, r := e.blob(cred, repo, content)
	if r.status != http.StatusCreated {
		return r
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, d, len(content))
	return e.do(cred, "PUT", "/v2/"+repo+"/manifests/"+tag, []byte(m), "Content-Type", "application/vnd.oci.image.manifest.v1+json")
}

func expect(t *testing.T, what string, r reply, status int, code string) {
	t.Helper()
	if r.status != status || code != "" && r.code() != code {
		t.Errorf("%s: %d %s, want %d %s (%s)", what, r.status, r.code(), status, code, bytes.TrimSpace(r.body))
	}
}

func TestAuthTable(t *testing.T) {
	e := newAuthEnv(t, nil)
	expect(t, "alice pushes acme/app:v1", e.manifest("basic:alice", "acme/app", "v1", []byte(`{"v":1}`)), 201, "")
	expect(t, "alice pushes acme/other:v1", e.manifest("basic:alice", "acme/other", "v1", []byte(`{"o":1}`)), 201, "")
	expect(t, "root pushes top:v1", e.manifest("basic:root", "top", "v1", []byte(`{"t":1}`)), 201, "")

	carolPull := e.token("basic:carol", "repository:acme/app:pull,push")
	alicePush := e.token("basic:alice", "repository:acme/app:pull,push")
	anonPull := e.token("", "repository:acme/app:pull")
	mf := "/v2/acme/app/manifests/v1"
	for _, c := range []struct {
		name, cred, method, path string
		status                   int
		code                     string
	}{
		// No credentials: the challenge, for every kind of route.
		{"no credentials: /v2/", "", "GET", "/v2/", 401, "UNAUTHORIZED"},
		{"no credentials: pull", "", "GET", mf, 401, "UNAUTHORIZED"},
		{"no credentials: push", "", "POST", "/v2/acme/app/blobs/uploads/", 401, "UNAUTHORIZED"},
		{"no credentials: delete", "", "DELETE", mf, 401, "UNAUTHORIZED"},
		{"no credentials: admin API", "", "GET", "/api/v1/robots", 401, "UNAUTHORIZED"},
		{"no credentials: pack versions", "", "GET", "/api/v1/packs/acme/app/versions", 401, "UNAUTHORIZED"},
		{"anonymous token: pull", "bearer:" + anonPull, "GET", mf, 401, "UNAUTHORIZED"},
		// Basic.
		{"wrong password", "basic:alice:nope", "GET", mf, 401, "UNAUTHORIZED"},
		{"unknown user", "basic:mallory", "GET", mf, 401, "UNAUTHORIZED"},
		{"carol: /v2/", "basic:carol", "GET", "/v2/", 200, ""},
		{"carol pulls", "basic:carol", "GET", mf, 200, ""},
		{"carol pulls top", "basic:carol", "GET", "/v2/top/manifests/v1", 200, ""},
		{"carol pushes", "basic:carol", "POST", "/v2/acme/app/blobs/uploads/", 403, "DENIED"},
		{"carol deletes", "basic:carol", "DELETE", mf, 403, "DENIED"},
		{"bob pushes", "basic:bob", "POST", "/v2/acme/app/blobs/uploads/", 202, ""},
		{"bob pushes outside acme", "basic:bob", "POST", "/v2/top/blobs/uploads/", 403, "DENIED"},
		{"bob deletes", "basic:bob", "DELETE", mf, 403, "DENIED"},
		{"bob: lifecycle", "basic:bob", "POST", "/api/v1/packs/acme/app/versions/v1/lifecycle", 403, "DENIED"},
		{"alice: admin API", "basic:alice", "GET", "/api/v1/robots", 403, "DENIED"},
		{"alice: keys", "basic:alice", "GET", "/api/v1/keys", 403, "DENIED"},
		{"alice: mirrors", "basic:alice", "GET", "/api/v1/mirrors", 403, "DENIED"},
		{"alice: audit", "basic:alice", "GET", "/api/v1/audit", 403, "DENIED"},
		{"root: admin API", "basic:root", "GET", "/api/v1/robots", 200, ""},
		{"root: audit", "basic:root", "GET", "/api/v1/audit", 200, ""},
		{"health is open", "", "GET", "/healthz", 200, ""},
		// Tokens.
		{"pull-only token pulls", "bearer:" + carolPull, "GET", mf, 200, ""},
		{"pull-only token pushes", "bearer:" + carolPull, "POST", "/v2/acme/app/blobs/uploads/", 401, "UNAUTHORIZED"},
		{"pull-only token deletes", "bearer:" + carolPull, "DELETE", mf, 401, "UNAUTHORIZED"},
		{"token for A used on B", "bearer:" + alicePush, "GET", "/v2/acme/other/manifests/v1", 401, "UNAUTHORIZED"},
		{"push token pushes", "bearer:" + alicePush, "POST", "/v2/acme/app/blobs/uploads/", 202, ""},
		{"push token deletes (not asked for)", "bearer:" + alicePush, "DELETE", mf, 401, "UNAUTHORIZED"},
		{"token of an admin on the admin API (no admin scope)", "bearer:" + e.token("basic:root", "repository:x:pull"), "GET", "/api/v1/robots", 403, "DENIED"},
		{"admin-scoped token on the admin API", "bearer:" + e.token("basic:root", "registry:admin:*"), "GET", "/api/v1/robots", 200, ""},
		{"admin scope is not granted to others", "bearer:" + e.token("basic:alice", "registry:admin:*"), "GET", "/api/v1/robots", 403, "DENIED"},
		{"garbage token", "bearer:abc.def.ghi", "GET", mf, 401, "UNAUTHORIZED"},
	} {
		r := e.do(c.cred, c.method, c.path, nil)
		expect(t, c.name, r, c.status, c.code)
		if r.status == 401 && strings.HasPrefix(c.path, "/v2/") {
			ch := r.header.Get("WWW-Authenticate")
			if !strings.HasPrefix(ch, `Bearer realm="`+e.srv.URL+`/token",service="packreg"`) {
				t.Errorf("%s: challenge %q", c.name, ch)
			}
			scoped := c.path != "/v2/" && !strings.Contains(c.name, "garbage") && !strings.Contains(c.name, "wrong") && !strings.Contains(c.name, "unknown")
			if scoped && !strings.Contains(ch, `scope="repository:`) {
				t.Errorf("%s: challenge without scope: %q", c.name, ch)
			}
			if strings.HasPrefix(c.cred, "bearer:") && scoped && !strings.Contains(ch, `error="insufficient_scope"`) && !strings.Contains(c.name, "anonymous") {
				t.Errorf("%s: challenge %q lacks insufficient_scope", c.name, ch)
			}
		}
	}
	// The challenge names the scope the request needs.
	r := e.do("", "POST", "/v2/acme/app/blobs/uploads/", nil)
	if ch := r.header.Get("WWW-Authenticate"); !strings.HasSuffix(ch, `scope="repository:acme/app:pull,push"`) {
		t.Errorf("push challenge %q", ch)
	}
	r = e.do("bearer:"+carolPull, "DELETE", mf, nil)
	if ch := r.header.Get("WWW-Authenticate"); !strings.HasSuffix(ch, `scope="repository:acme/app:delete",error="insufficient_scope"`) {
		t.Errorf("delete challenge %q", ch)
	}
	// What carol's token carries: the intersection.
	claims := decodeClaims(t, carolPull)
	if got := fmt.Sprint(claims["access"]); got != "[map[actions:[pull] name:acme/app type:repository]]" {
		t.Errorf("carol's grant: %s", got)
	}
	expect(t, "alice deletes", e.do("basic:alice", "DELETE", mf, nil), 202, "")
}

func decodeClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

// TestAuthForgedTokens: tokens the server did not issue as they are, each
// refused with invalid_token.
func TestAuthForgedTokens(t *testing.T) {
	e := newAuthEnv(t, nil)
	expect(t, "push", e.manifest("basic:alice", "acme/app", "v1", []byte(`{}`)), 201, "")
	key, err := auth.LoadKey(filepath.Join(e.data, "token-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "packreg", "aud": "packreg", "sub": "alice", "iat": now.Unix(), "nbf": now.Unix(),
			"exp": now.Add(time.Minute).Unix(), "access": []auth.Scope{{Type: "repository", Name: "acme/app", Actions: []string{"pull"}}}}
		if change != nil {
			change(c)
		}
		return c
	}
	sign := func(m jwt.SigningMethod, k any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign(jwt.SigningMethodES256, key, claims(nil))
	expect(t, "a well-formed token of our key", e.do("bearer:"+good, "GET", "/v2/acme/app/manifests/v1", nil), 200, "")
	pub, _ := x509.MarshalPKIXPublicKey(key.Public())
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	body, _ := json.Marshal(claims(nil))
	for name, tok := range map[string]string{
		"alg none":                  hdr + "." + base64.RawURLEncoding.EncodeToString(body) + ".",
		"HS256 with the public key": sign(jwt.SigningMethodHS256, pub, claims(nil)),
		"expired":                   sign(jwt.SigningMethodES256, key, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Minute).Unix() })),
		"not yet valid":             sign(jwt.SigningMethodES256, key, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(2 * time.Minute).Unix() })),
		"wrong audience":            sign(jwt.SigningMethodES256, key, claims(func(c jwt.MapClaims) { c["aud"] = "other" })),
		"wrong issuer":              sign(jwt.SigningMethodES256, key, claims(func(c jwt.MapClaims) { c["iss"] = "other" })),
		"subject nobody has":        sign(jwt.SigningMethodES256, key, claims(func(c jwt.MapClaims) { c["sub"] = "mallory" })),
		"oversized":                 good + strings.Repeat("A", auth.MaxTokenSize),
	} {
		r := e.do("bearer:"+tok, "GET", "/v2/acme/app/manifests/v1", nil)
		expect(t, name, r, 401, "UNAUTHORIZED")
		if ch := r.header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="invalid_token"`) {
			t.Errorf("%s: challenge %q", name, ch)
		}
	}
}

// TestAuthRemovedUserAndDisabledRobot: rights are read on every request;
// a token outlives neither its user's removal nor its robot's disabling.
func TestAuthRemovedUserAndDisabledRobot(t *testing.T) {
	e := newAuthEnv(t, nil)
	expect(t, "push", e.manifest("basic:alice", "acme/app", "v1", []byte(`{}`)), 201, "")
	tok := e.token("basic:carol", "repository:acme/app:pull")
	expect(t, "carol's token", e.do("bearer:"+tok, "GET", "/v2/acme/app/manifests/v1", nil), 200, "")
	delete(e.users, "carol")
	e.writeUsers()
	expect(t, "carol's token after her removal", e.do("bearer:"+tok, "GET", "/v2/acme/app/manifests/v1", nil), 401, "UNAUTHORIZED")
	expect(t, "carol's password after her removal", e.do("basic:carol", "GET", "/v2/acme/app/manifests/v1", nil), 401, "UNAUTHORIZED")

	// A robot, made by root; its secret is shown once.
	r := e.do("basic:root", "POST", "/api/v1/robots", []byte(`{"name":"ci","rules":[{"repositories":["ci/**"],"actions":["pull","push"]}],"expiresAt":"2099-01-01T00:00:00Z"}`),
		"Content-Type", "application/json")
	expect(t, "create robot", r, 201, "")
	var created struct {
		Identity, Secret string
	}
	json.Unmarshal(r.body, &created)
	if created.Identity != "robot:ci" || !strings.HasPrefix(created.Secret, "packreg_") {
		t.Fatalf("created %s", r.body)
	}
	list := e.do("basic:root", "GET", "/api/v1/robots", nil)
	if bytes.Contains(list.body, []byte(created.Secret)) || bytes.Contains(list.body, []byte("ecret")) {
		t.Errorf("the list shows a secret: %s", list.body)
	}
	robot := "basic:robot:ci:" + created.Secret
	expect(t, "robot pushes ci/app", e.manifest(robot, "ci/app", "v1", []byte(`{"ci":1}`)), 201, "")
	expect(t, "robot pushes acme/app", e.do(robot, "POST", "/v2/acme/app/blobs/uploads/", nil), 403, "DENIED")
	rtok := e.token(robot, "repository:ci/app:pull,push")
	expect(t, "robot's token", e.do("bearer:"+rtok, "GET", "/v2/ci/app/manifests/v1", nil), 200, "")
	expect(t, "disable", e.do("basic:root", "POST", "/api/v1/robots/ci/disable", nil), 200, "")
	expect(t, "disabled robot's token", e.do("bearer:"+rtok, "GET", "/v2/ci/app/manifests/v1", nil), 401, "UNAUTHORIZED")
	expect(t, "disabled robot's secret", e.do(robot, "GET", "/v2/ci/app/manifests/v1", nil), 401, "UNAUTHORIZED")
	expect(t, "enable", e.do("basic:root", "POST", "/api/v1/robots/ci/enable", nil), 200, "")
	expect(t, "enabled robot's token", e.do("bearer:"+rtok, "GET", "/v2/ci/app/manifests/v1", nil), 200, "")
	expect(t, "delete robot", e.do("basic:root", "DELETE", "/api/v1/robots/ci", nil), 204, "")
	expect(t, "deleted robot's token", e.do("bearer:"+rtok, "GET", "/v2/ci/app/manifests/v1", nil), 401, "UNAUTHORIZED")

	// The audit trail names the actors.
	var trail struct {
		Items []struct{ Actor, Action, Target string }
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := e.do("basic:root", "GET", "/api/v1/audit?limit=100", nil)
		trail.Items = nil
		json.Unmarshal(a.body, &trail)
		got := map[string]bool{}
		for _, rec := range trail.Items {
			got[rec.Actor+" "+rec.Action+" "+rec.Target] = true
		}
		if got["root robot.create robot:ci"] && got["root robot.delete robot:ci"] && got["robot:ci tag.move ci/app:v1"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit trail lacks the actors: %s", a.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAuthAdminBodies: the admin API reads request-specific structs; an
// unknown field is a 400.
func TestAuthAdminBodies(t *testing.T) {
	e := newAuthEnv(t, nil)
	for name, body := range map[string]string{
		"unknown field":  `{"name":"ci","rules":[{"repositories":["**"],"actions":["pull"]}],"admin":true}`,
		"a rule's users": `{"name":"ci","rules":[{"repositories":["**"],"users":["root"],"actions":["pull"]}]}`,
		"bad action":     `{"name":"ci","rules":[{"repositories":["**"],"actions":["own"]}]}`,
		"no rules":       `{"name":"ci"}`,
		"bad name":       `{"name":"CI!","rules":[{"repositories":["**"],"actions":["pull"]}]}`,
		"past expiry":    `{"name":"ci","rules":[{"repositories":["**"],"actions":["pull"]}],"expiresAt":"2000-01-01T00:00:00Z"}`,
	} {
		expect(t, name, e.do("basic:root", "POST", "/api/v1/robots", []byte(body), "Content-Type", "application/json"), 400, "BAD_REQUEST")
	}
	for _, p := range []string{"/api/v1/keys", "/api/v1/mirrors"} {
		expect(t, p+" unknown field", e.do("basic:root", "POST", p, []byte(`{"zzz":1}`), "Content-Type", "application/json"), 400, "")
	}
}

// TestAuthBruteForce: failed logins from one address reach 429 with
// Retry-After; the right password is refused too while it lasts.
func TestAuthBruteForce(t *testing.T) {
	e := newAuthEnv(t, nil)
	for i := range 5 {
		expect(t, fmt.Sprintf("failure %d", i+1), e.do("basic:alice:guess", "GET", "/v2/", nil), 401, "UNAUTHORIZED")
	}
	r := e.do("basic:alice:guess", "GET", "/v2/", nil)
	expect(t, "sixth try", r, 429, "TOOMANYREQUESTS")
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
	expect(t, "the right password while limited", e.do("basic:alice", "GET", "/v2/", nil), 429, "TOOMANYREQUESTS")
	expect(t, "the token endpoint while limited", e.do("basic:alice", "GET", "/token?scope=repository:a:pull", nil), 429, "TOOMANYREQUESTS")
}

// TestAuthOverwrite: push creates tags, moving one that points elsewhere
// needs overwrite, decided by the registry on the tag's state as the write
// commits (URL tag and ?tag= alike).
func TestAuthOverwrite(t *testing.T) {
	e := newAuthEnv(t, nil)
	expect(t, "bob creates acme/app:v1", e.manifest("basic:bob", "acme/app", "v1", []byte(`{"a":1}`)), 201, "")
	expect(t, "bob pushes the same content to v1 again", e.manifest("basic:bob", "acme/app", "v1", []byte(`{"a":1}`)), 201, "")
	expect(t, "bob creates v2", e.manifest("basic:bob", "acme/app", "v2", []byte(`{"a":2}`)), 201, "")
	expect(t, "bob moves v1", e.manifest("basic:bob", "acme/app", "v1", []byte(`{"a":3}`)), 403, "DENIED")
	expect(t, "bob moves v1 through ?tag=", e.manifest("basic:bob", "acme/app", "v9?tag=v1", []byte(`{"a":4}`)), 403, "DENIED")
	// The right first, then the references: a move bob may not make is
	// DENIED whatever else is wrong with it, so he does not push blobs to
	// be refused again. A pack's config (read before admission) too.
	for _, configType := range []string{"application/vnd.oci.image.config.v1+json", "application/vnd.packreg.pack.config.v1+json"} {
		m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
			`"config":{"mediaType":%q,"digest":"sha256:%x","size":2},"layers":[]}`, configType, sha256.Sum256([]byte("never pushed")))
		expect(t, "bob moves v1 to a manifest whose config is missing ("+configType+")",
			e.do("basic:bob", "PUT", "/v2/acme/app/manifests/v1", []byte(m), "Content-Type", "application/vnd.oci.image.manifest.v1+json"), 403, "DENIED")
	}
	tok := e.token("basic:bob", "repository:acme/app:pull,push")
	r := e.manifest("bearer:"+tok, "acme/app", "v1", []byte(`{"a":5}`))
	expect(t, "bob's token moves v1", r, 401, "UNAUTHORIZED")
	if ch := r.header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="insufficient_scope"`) {
		t.Errorf("challenge %q", ch)
	}
	expect(t, "bob's token creates v3", e.manifest("bearer:"+tok, "acme/app", "v3", []byte(`{"a":6}`)), 201, "")
	// v1 still points at the first push.
	r = e.do("basic:carol", "GET", "/v2/acme/app/manifests/v1", nil, "Accept", "application/vnd.oci.image.manifest.v1+json")
	expect(t, "carol pulls v1", r, 200, "")
	first := e.do("basic:carol", "GET", "/v2/acme/app/manifests/v2", nil)
	if bytes.Equal(r.body, first.body) {
		t.Error("v1 moved")
	}
	alice := e.token("basic:alice", "repository:acme/app:pull,push")
	expect(t, "alice's push token moves v1 (overwrite granted with push)", e.manifest("bearer:"+alice, "acme/app", "v1", []byte(`{"a":7}`)), 201, "")
	expect(t, "alice moves v2", e.manifest("basic:alice", "acme/app", "v2", []byte(`{"a":8}`)), 201, "")
}

// TestAuthMountAndListings: a mount from a repository the caller cannot
// read is an ordinary upload; the catalog and pack listings show only what
// the caller may pull, publish needs push on the body's name.
func TestAuthMountAndListings(t *testing.T) {
	e := newAuthEnv(t, nil)
	secret := []byte(`{"private":true}`)
	expect(t, "root pushes private/x", e.manifest("basic:root", "private/x", "v1", secret), 201, "")
	expect(t, "alice pushes acme/other", e.manifest("basic:alice", "acme/other", "v1", []byte(`{"o":1}`)), 201, "")
	d, _ := e.blob("basic:root", "private/x", secret)
	od, _ := e.blob("basic:alice", "acme/other", []byte(`{"o":1}`))

	expect(t, "carol cannot pull private/x", e.do("basic:carol", "GET", "/v2/private/x/blobs/"+d, nil), 403, "DENIED")
	r := e.do("basic:bob", "POST", "/v2/acme/app/blobs/uploads/?mount="+d+"&from=private/x", nil)
	expect(t, "bob mounts from private/x", r, 202, "")
	if loc := r.header.Get("Location"); !strings.Contains(loc, "/blobs/uploads/") {
		t.Errorf("mount from an unreadable repository: Location %q, want an upload", loc)
	}
	expect(t, "bob mounts without from", e.do("basic:bob", "POST", "/v2/acme/app/blobs/uploads/?mount="+d, nil), 202, "")
	expect(t, "the blob did not arrive in acme/app", e.do("basic:bob", "HEAD", "/v2/acme/app/blobs/"+d, nil), 404, "")
	expect(t, "bob mounts from acme/other", e.do("basic:bob", "POST", "/v2/acme/app/blobs/uploads/?mount="+od+"&from=acme/other", nil), 201, "")

	catalog := func(cred string) []string {
		var all []string
		next := "/v2/_catalog?n=1"
		for next != "" {
			r := e.do(cred, "GET", next, nil)
			expect(t, "catalog", r, 200, "")
			var page struct{ Repositories []string }
			json.Unmarshal(r.body, &page)
			all = append(all, page.Repositories...)
			next = ""
			if l := r.header.Get("Link"); l != "" {
				next = strings.TrimPrefix(strings.Split(l, ">")[0], "<")
			}
			if len(all) > 10 {
				t.Fatal("catalog pages do not end")
			}
		}
		return all
	}
	if got := fmt.Sprint(catalog("basic:carol")); got != "[acme/app acme/other]" {
		t.Errorf("carol's catalog: %s", got)
	}
	if got := fmt.Sprint(catalog("basic:root")); got != "[acme/app acme/other private/x]" {
		t.Errorf("root's catalog: %s", got)
	}
	// crane catalog asks /token for registry:catalog:* alone: that token
	// lists what its identity may pull.
	if got := fmt.Sprint(catalog("bearer:" + e.token("basic:carol", "registry:catalog:*"))); got != "[acme/app acme/other]" {
		t.Errorf("carol's catalog with a catalog token: %s", got)
	}
	if got := fmt.Sprint(catalog("bearer:" + e.token("basic:carol", "repository:acme/app:pull"))); got != "[acme/app]" {
		t.Errorf("carol's catalog with a token for acme/app only: %s", got)
	}
	// Anonymous may pull nothing here: the catalog challenges for
	// registry:catalog:*, so that oras and regctl send their credentials
	// (an empty 200 listed nothing for them).
	anon := e.do("", "GET", "/v2/_catalog", nil)
	expect(t, "anonymous catalog", anon, 401, "UNAUTHORIZED")
	if got := anon.header.Get("WWW-Authenticate"); !strings.Contains(got, `scope="registry:catalog:*"`) {
		t.Errorf("anonymous catalog challenge: %q", got)
	}

	// Packs: publish needs push on the name in the body.
	body, ct := publishForm("private/pack", "1.0.0", []byte("data"))
	expect(t, "alice publishes private/pack", e.do("basic:alice", "POST", "/api/v1/packs", body, "Content-Type", ct), 403, "DENIED")
	expect(t, "anonymous publishes", e.do("", "POST", "/api/v1/packs", body, "Content-Type", ct), 401, "UNAUTHORIZED")
	expect(t, "root publishes private/pack", e.do("basic:root", "POST", "/api/v1/packs", body, "Content-Type", ct), 201, "")
	body, ct = publishForm("acme/pack", "1.0.0", []byte("data"))
	expect(t, "alice publishes acme/pack", e.do("basic:alice", "POST", "/api/v1/packs", body, "Content-Type", ct), 201, "")
	list := string(e.do("basic:carol", "GET", "/api/v1/packs", nil).body)
	if !strings.Contains(list, `"acme/pack"`) || strings.Contains(list, "private/pack") {
		t.Errorf("carol's pack list: %s", list)
	}
	if list := string(e.do("basic:root", "GET", "/api/v1/packs", nil).body); !strings.Contains(list, "private/pack") {
		t.Errorf("root's pack list: %s", list)
	}
	expect(t, "carol reads private/pack's versions", e.do("basic:carol", "GET", "/api/v1/packs/private/pack/versions", nil), 403, "DENIED")
}

// TestAuthAnonymousPull: auth.anonymous [pull] lets anyone pull, with or
// without a token, and nothing more; /v2/ still challenges, so clients
// fetch a token and find the realm.
func TestAuthAnonymousPull(t *testing.T) {
	e := newAuthEnv(t, func(c *Config) { c.Auth.Anonymous = []string{"pull"} })
	expect(t, "alice pushes", e.manifest("basic:alice", "acme/app", "v1", []byte(`{}`)), 201, "")
	expect(t, "anonymous pulls", e.do("", "GET", "/v2/acme/app/manifests/v1", nil), 200, "")
	expect(t, "anonymous /v2/", e.do("", "GET", "/v2/", nil), 401, "UNAUTHORIZED")
	// Anonymous may pull every repository: its catalog is the whole one,
	// with no challenge.
	if r := e.do("", "GET", "/v2/_catalog", nil); r.status != 200 || !strings.Contains(string(r.body), `"repositories":["acme/app"]`) {
		t.Errorf("anonymous catalog: %d %s", r.status, r.body)
	}
	anon := e.token("", "repository:acme/app:pull,push")
	if got := fmt.Sprint(decodeClaims(t, anon)["access"]); got != "[map[actions:[pull] name:acme/app type:repository]]" {
		t.Errorf("anonymous grant: %s", got)
	}
	expect(t, "anonymous token pulls", e.do("bearer:"+anon, "GET", "/v2/acme/app/manifests/v1", nil), 200, "")
	expect(t, "anonymous token pushes", e.do("bearer:"+anon, "POST", "/v2/acme/app/blobs/uploads/", nil), 401, "UNAUTHORIZED")
	expect(t, "anonymous pushes", e.do("", "POST", "/v2/acme/app/blobs/uploads/", nil), 401, "UNAUTHORIZED")
	expect(t, "a wrong password is no anonymous pull", e.do("basic:alice:nope", "GET", "/v2/acme/app/manifests/v1", nil), 401, "UNAUTHORIZED")
}

// TestAuthHostCheck: the DNS-rebinding guard stays while anything is
// anonymous on loopback, and goes when every action needs credentials.
func TestAuthHostCheck(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*Config)
		want   bool
	}{
		{"anonymous", func(*Config) {}, true},
		{"auth, nothing anonymous", func(c *Config) { c.Auth.Htpasswd = "/h" }, false},
		{"auth, anonymous pull", func(c *Config) { c.Auth.Htpasswd = "/h"; c.Auth.Anonymous = []string{"pull"} }, true},
		{"beyond loopback", func(c *Config) { c.Addr = "0.0.0.0:5000"; c.AllowAnonymous = true }, false},
	} {
		cfg := DefaultConfig()
		c.change(&cfg)
		if got := newEdgeSettings(cfg).checkHost; got != c.want {
			t.Errorf("%s: Host checked %v, want %v", c.name, got, c.want)
		}
	}
}

// TestHSTS: every answer over TLS carries Strict-Transport-Security, none
// over plain HTTP.
func TestHSTS(t *testing.T) {
	h := testApp(t, nil).handler
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(v, "max-age=") {
		t.Errorf("over TLS: Strict-Transport-Security %q", v)
	}
	plain := httptest.NewServer(h)
	defer plain.Close()
	resp, err = http.Get(plain.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.Header.Get("Strict-Transport-Security"); v != "" {
		t.Errorf("over HTTP: Strict-Transport-Security %q", v)
	}
}

// TestCLICredentials: the CLI logs in with $PACKREG_USERNAME and
// $PACKREG_PASSWORD, and sends them to the --server origin only.
func TestCLICredentials(t *testing.T) {
	e := newAuthEnv(t, nil)
	dir := t.TempDir()
	f := filepath.Join(dir, "rules.yaml")
	os.WriteFile(f, []byte("rules: []\n"), 0o644)
	publish := func() (int, string) {
		code, out, errOut := cliRun("pack", "publish", "acme/cli:1.0.0", f, "--server", e.srv.URL)
		return code, out + errOut
	}
	if code, out := publish(); code == 0 || !strings.Contains(out, "UNAUTHORIZED") {
		t.Fatalf("without credentials: %d %s", code, out)
	}
	t.Setenv("PACKREG_USERNAME", "alice")
	t.Setenv("PACKREG_PASSWORD", "alice-pw")
	if code, out := publish(); code != 0 {
		t.Fatalf("as alice: %d %s", code, out)
	}

	// Another origin never sees them.
	var got []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got = append(got, req.Header.Get("Authorization"))
	}))
	defer other.Close()
	hc := cliHTTP(e.srv.URL, time.Minute)
	for _, u := range []string{other.URL + "/api/v1/packs", e.srv.URL + "/healthz"} {
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if len(got) != 1 || got[0] != "" {
		t.Errorf("another origin got Authorization %q", got)
	}
}

// TestTokenEndpoint: the POST form (OAuth2 password grant), a wrong
// password's Basic challenge, and the checks of the request.
func TestTokenEndpoint(t *testing.T) {
	e := newAuthEnv(t, nil)
	form := func(v url.Values) reply {
		return e.do("", "POST", "/token", []byte(v.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	}
	r := form(url.Values{"grant_type": {"password"}, "username": {"carol"}, "password": {"carol-pw"},
		"service": {"packreg"}, "scope": {"repository:acme/app:pull,push registry:catalog:*"}})
	expect(t, "password grant", r, 200, "")
	var ans tokenAnswer
	json.Unmarshal(r.body, &ans)
	if got := fmt.Sprint(decodeClaims(t, ans.Token)["access"]); got != "[map[actions:[pull] name:acme/app type:repository] map[actions:[*] name:catalog type:registry]]" {
		t.Errorf("grant: %s", got)
	}
	if c := decodeClaims(t, ans.Token); c["sub"] != "carol" || fmt.Sprint(c["aud"]) != "[packreg]" || c["iss"] != "packreg" {
		t.Errorf("claims %v", c)
	}
	expect(t, "refresh grant", form(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}), 400, "UNSUPPORTED_GRANT_TYPE")
	r = form(url.Values{"grant_type": {"password"}, "username": {"carol"}, "password": {"nope"}})
	expect(t, "wrong password", r, 401, "UNAUTHORIZED")
	if ch := r.header.Get("WWW-Authenticate"); ch != `Basic realm="packreg"` {
		t.Errorf("token challenge %q", ch)
	}
	expect(t, "another service", e.do("basic:carol", "GET", "/token?service=other&scope=repository:a:pull", nil), 400, "BAD_REQUEST")
	expect(t, "bad scope", e.do("basic:carol", "GET", "/token?scope=pull", nil), 400, "BAD_REQUEST")
	many := url.Values{}
	for i := range 17 {
		many.Add("scope", fmt.Sprintf("repository:r%d:pull", i))
	}
	expect(t, "17 scopes", e.do("basic:carol", "GET", "/token?"+many.Encode(), nil), 400, "BAD_REQUEST")
}

// TestRouteAccess is the rights table of README's "Authentication and
// authorization", held to what every row of the route table declares:
// a row added without a declaration is admin-only, and shows up here.
func TestRouteAccess(t *testing.T) {
	a := testApp(t, nil)
	rows := append(append(append(append(a.reg.Routes(), a.packs.svc.Routes()...), audit.Routes(a.packs.trail, nil)...),
		a.att.svc.Routes()...), append(a.mir.svc.Routes(), a.bun.svc.Routes()...)...)
	got := map[routes.Access][]string{}
	for _, r := range rows {
		got[r.Access] = append(got[r.Access], r.Method+" "+r.Path)
	}
	want := map[routes.Access][]string{
		routes.Authenticated: {"GET /v2/", "HEAD /v2/", "GET /v2", "HEAD /v2"},
		routes.AnyCaller:     {"GET /v2/_catalog", "GET /api/v1/packs", "POST /api/v1/packs"},
		routes.CanDelete:     {"DELETE /v2/{name:.+}/manifests/{ref:[^/]*}", "DELETE /v2/{name:.+}/blobs/{ref:[^/]*}"},
	}
	for acc, list := range want {
		if g := got[acc]; fmt.Sprint(g) != fmt.Sprint(list) {
			t.Errorf("access %v: %v, want %v", acc, g, list)
		}
	}
	if l := got[routes.CanLifecycle]; len(l) != 2 || !strings.HasPrefix(l[0], "POST /api/v1/packs/") || !strings.HasSuffix(l[0], "/lifecycle") ||
		!strings.HasPrefix(l[1], "POST /api/v1/packs/") || !strings.HasSuffix(l[1], "/lifecycle") {
		t.Errorf("lifecycle rows: %v", l)
	}
	for _, r := range got[routes.CanPull] {
		if !strings.HasPrefix(r, "GET ") && !strings.HasPrefix(r, "HEAD ") {
			t.Errorf("pull row %s changes something", r)
		}
	}
	for _, r := range got[routes.AdminOnly] {
		for _, p := range []string{"/api/v1/keys", "/api/v1/trusted-roots", "/api/v1/mirrors", "/api/v1/upstreams", "/api/v1/parity", "/api/v1/audit", "/api/v1/export", "/api/v1/import"} {
			if strings.Contains(r, " "+p) {
				goto ok
			}
		}
		t.Errorf("%s is admin-only: declare its access (routes.Route.With)", r)
	ok:
	}
	if len(got[routes.Public]) != 0 {
		t.Errorf("public package rows: %v", got[routes.Public])
	}
	if n := len(got[routes.CanPull]) + len(got[routes.CanPush]); n < 15 {
		t.Errorf("only %d pull and push rows", n)
	}
}

// TestAuthLeavesProbesAndMetricsOpen: with authentication on, a prober
// and a Prometheus scraper, which carry no credentials, still get their
// answers; /metrics is a Public row, not an admin one by default.
func TestAuthLeavesProbesAndMetricsOpen(t *testing.T) {
	e := newAuthEnv(t, nil)
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		expect(t, "anonymous GET "+p, e.do("", "GET", p, nil), 200, "")
	}
	if r := e.do("", "GET", "/metrics", nil); !bytes.Contains(r.body, []byte("packreg_build_info")) {
		t.Errorf("/metrics without credentials is not the scrape: %.200s", r.body)
	}
	expect(t, "anonymous /v2/ still challenged", e.do("", "GET", "/v2/", nil), 401, "UNAUTHORIZED")
}

// TestAuthMountTokenFlow: a client that takes its scope from the challenge
// (the OCI conformance suite does) can mount. The challenge of a mount
// also asks pull on its source, as Distribution's does, space-separated
// in one scope value, and /token reads a space-separated value as several
// scopes (RFC 6749 §3.3). Before, the token named only the target, so
// every mount became an upload.
func TestAuthMountTokenFlow(t *testing.T) {
	e := newAuthEnv(t, nil)
	od, _ := e.blob("basic:alice", "acme/other", []byte(`{"o":1}`))
	mount := "/v2/acme/app/blobs/uploads/?mount=" + od + "&from=acme/other"
	r := e.do("", "POST", mount, nil)
	expect(t, "mount without credentials", r, 401, "UNAUTHORIZED")
	ch := r.header.Get("WWW-Authenticate")
	const want = `scope="repository:acme/app:pull,push repository:acme/other:pull"`
	if !strings.HasSuffix(ch, want) {
		t.Fatalf("mount challenge %q, want it to end in %s", ch, want)
	}
	tok := e.token("basic:bob", "repository:acme/app:pull,push repository:acme/other:pull")
	expect(t, "mount with the token of the challenge's scope", e.do("bearer:"+tok, "POST", mount, nil), 201, "")

	// A token of the target only (a client caching one per repository):
	// asked to fetch the right one when the identity may read the source,
	// an ordinary upload when it may not.
	pd, _ := e.blob("basic:root", "private/x", []byte(`{"p":1}`))
	only := e.token("basic:bob", "repository:acme/app:pull,push")
	r = e.do("bearer:"+only, "POST", "/v2/acme/app/blobs/uploads/?mount="+od+"&from=acme/other", nil)
	expect(t, "mount with a token of the target only", r, 401, "UNAUTHORIZED")
	if ch := r.header.Get("WWW-Authenticate"); !strings.HasSuffix(ch, strings.TrimSuffix(want, `"`)+`",error="insufficient_scope"`) {
		t.Errorf("mount with a token of the target only: challenge %q", ch)
	}
	expect(t, "mount from an unreadable source with a token", e.do("bearer:"+only, "POST", "/v2/acme/app/blobs/uploads/?mount="+pd+"&from=private/x", nil), 202, "")
	if r := e.do("", "POST", "/v2/acme/app/blobs/uploads/?mount="+od+"&from=no%20such", nil); strings.Contains(r.header.Get("WWW-Authenticate"), "no such") {
		t.Errorf("a malformed from is echoed: %q", r.header.Get("WWW-Authenticate"))
	}
}
