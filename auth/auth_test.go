package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/packreg/packreg/auth"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/sqlite"
)

// htpasswdLine is one bcrypt entry, at the lowest cost to keep tests quick.
func htpasswdLine(t *testing.T, user, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(h) + "\n"
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newAuthority(t *testing.T, c auth.Config, now func() time.Time) (*auth.Authority, storage.Store) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := auth.New(c, st, now)
	if err != nil {
		t.Fatal(err)
	}
	return a, st
}

func TestRulesFirstMatchWins(t *testing.T) {
	dir := t.TempDir()
	hp := filepath.Join(dir, "htpasswd")
	writeFile(t, hp, htpasswdLine(t, "alice", "a")+htpasswdLine(t, "bob", "b")+htpasswdLine(t, "root", "r"))
	a, _ := newAuthority(t, auth.Config{
		Htpasswd: hp,
		Admins:   []string{"root"},
		Rules: []auth.Rule{
			{Repositories: []string{"acme/**"}, Users: []string{"alice"}, Actions: []string{"pull", "push"}},
			{Repositories: []string{"acme/secret"}, Users: []string{"bob"}, Actions: []string{}},
			{Repositories: []string{"acme/*"}, Users: []string{"bob"}, Actions: []string{"pull", "delete"}},
			{Repositories: []string{"**"}, Users: []string{"*"}, Actions: []string{"pull"}},
		},
		Anonymous: []string{},
	}, time.Now)
	alice := login(t, a, "alice", "a")
	bob := login(t, a, "bob", "b")
	root := login(t, a, "root", "r")
	anon := auth.AnonymousIdentity()
	for _, c := range []struct {
		id   auth.Identity
		repo string
		want auth.Action
	}{
		{alice, "acme/x", auth.Pull | auth.Push},
		{alice, "acme/x/y", auth.Pull | auth.Push},
		{alice, "acme", auth.Pull}, // acme/** needs a component after acme/
		{alice, "other", auth.Pull},
		{bob, "acme/secret", 0}, // a rule with no actions matched first
		{bob, "acme/x", auth.Pull | auth.Delete},
		{bob, "acme/x/y", auth.Pull}, // acme/* is one component
		{root, "anything/at/all", auth.AllActions},
		{anon, "acme/x", 0}, // "*" is authenticated identities only
	} {
		if got := a.Rights(c.id, c.repo); got != c.want {
			t.Errorf("%s on %s: %v, want %v", c.id.Name, c.repo, got, c.want)
		}
	}
	if !a.IsAdmin(root) || a.IsAdmin(alice) || a.IsAdmin(anon) {
		t.Error("only root is an admin")
	}
}

func TestAnonymousActionsAreEveryones(t *testing.T) {
	dir := t.TempDir()
	hp := filepath.Join(dir, "htpasswd")
	writeFile(t, hp, htpasswdLine(t, "alice", "a"))
	a, _ := newAuthority(t, auth.Config{Htpasswd: hp, Anonymous: []string{"pull"},
		Rules: []auth.Rule{{Repositories: []string{"mine"}, Users: []string{"alice"}, Actions: []string{"push"}}}}, time.Now)
	if got := a.Rights(auth.AnonymousIdentity(), "x"); got != auth.Pull {
		t.Errorf("anonymous: %v", got)
	}
	if got := a.Rights(login(t, a, "alice", "a"), "mine"); got != auth.Pull|auth.Push {
		t.Errorf("alice on mine: %v, want pull (anonymous) and push", got)
	}
}

func login(t *testing.T, a *auth.Authority, user, pass string) auth.Identity {
	t.Helper()
	id, err := a.Login(t.Context(), user, pass)
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return id
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		c    auth.Config
		want string
	}{
		{"unknown action", auth.Config{Htpasswd: "x", Rules: []auth.Rule{{Repositories: []string{"a"}, Users: []string{"u"}, Actions: []string{"write"}}}}, `unknown action "write"`},
		{"no users", auth.Config{Htpasswd: "x", Rules: []auth.Rule{{Repositories: []string{"a"}, Actions: []string{"pull"}}}}, "no users"},
		{"no repositories", auth.Config{Htpasswd: "x", Rules: []auth.Rule{{Users: []string{"u"}, Actions: []string{"pull"}}}}, "no repositories"},
		{"robot admin", auth.Config{Htpasswd: "x", Admins: []string{"robot:ci"}}, "admins are htpasswd users"},
		{"anonymous", auth.Config{Htpasswd: "x", Anonymous: []string{"all"}}, "auth.anonymous"},
		{"rules without users file", auth.Config{Admins: []string{"root"}}, "without auth.htpasswd"},
	} {
		err := c.c.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestHtpasswdBcryptOnly(t *testing.T) {
	dir := t.TempDir()
	for _, line := range []string{
		"alice:$apr1$abcdefgh$0123456789012345678901", // MD5
		"alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",     // SHA-1
		"alice:plaintext",
		"alice",
		"robot:ci:" + strings.TrimPrefix(htpasswdLine(t, "x", "y"), "x:"),
		"robot$ci:" + strings.TrimPrefix(htpasswdLine(t, "x", "y"), "x:"),                         // would shadow robot ci's login name
		strings.TrimSuffix(htpasswdLine(t, "alice", "old")+htpasswdLine(t, "alice", "new"), "\n"), // which one holds?
	} {
		p := filepath.Join(dir, "htpasswd")
		writeFile(t, p, line+"\n")
		_, err := auth.LoadHtpasswd(p)
		if err == nil {
			t.Errorf("%q loaded", line)
			continue
		}
		if strings.Contains(err.Error(), "abcdefgh") || strings.Contains(err.Error(), "W6ph5") || strings.Contains(err.Error(), "plaintext") {
			t.Errorf("error shows the hash: %v", err)
		}
	}
}

func TestHtpasswdReloadsOnChange(t *testing.T) {
	p := filepath.Join(t.TempDir(), "htpasswd")
	writeFile(t, p, htpasswdLine(t, "alice", "a")+htpasswdLine(t, "bob", "b"))
	h, err := auth.LoadHtpasswd(p)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Verify("alice", "a") || !h.Verify("bob", "b") || h.Verify("bob", "a") || h.Verify("carol", "a") {
		t.Fatal("verify before the change")
	}
	// Again, from what bcrypt accepted: the same answers.
	if !h.Verify("alice", "a") || h.Verify("alice", "b") || h.Verify("alice", "") || !h.Verify("bob", "b") {
		t.Fatal("verify a second time")
	}
	writeFile(t, p, htpasswdLine(t, "alice", "new")) // bob removed, alice's password changed
	if h.Verify("bob", "b") || h.Exists("bob") {
		t.Error("bob still logs in after his removal")
	}
	if h.Verify("alice", "a") || !h.Verify("alice", "new") {
		t.Error("alice's new password is not in force")
	}
}

// A rewrite that keeps the file's size and mtime (the same timestamp
// tick: bcrypt lines are all 60 bytes) still puts the new password in
// force. The stamp is set in the future so that the clock cannot leave
// the racy window while the test runs.
func TestHtpasswdReloadsAChangeInTheSameTick(t *testing.T) {
	p := filepath.Join(t.TempDir(), "htpasswd")
	stamp := time.Now().Add(time.Hour)
	write := func(content string) {
		t.Helper()
		writeFile(t, p, content)
		if err := os.Chtimes(p, stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
	before := htpasswdLine(t, "alice", "old")
	write(before)
	h, err := auth.LoadHtpasswd(p)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Verify("alice", "old") || !h.Verify("alice", "old") { // the second from what bcrypt accepted
		t.Fatal("alice refused before the change")
	}
	after := htpasswdLine(t, "alice", "new")
	if len(after) != len(before) {
		t.Fatalf("lines of %d and %d bytes: the test needs the same size", len(before), len(after))
	}
	write(after)
	if h.Verify("alice", "old") {
		t.Error("alice's old password still logs in after a same-size change in the same tick")
	}
	if !h.Verify("alice", "new") {
		t.Error("alice's new password is not in force")
	}
}

func TestRobots(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	p := filepath.Join(t.TempDir(), "htpasswd")
	writeFile(t, p, htpasswdLine(t, "alice", "a"))
	a, st := newAuthority(t, auth.Config{Htpasswd: p,
		Rules: []auth.Rule{{Repositories: []string{"**"}, Users: []string{"*"}, Actions: []string{"pull"}}}}, clock)
	secret, hash := auth.NewSecret()
	if strings.Contains(hash, secret) || len(secret) < 40 {
		t.Fatalf("secret %q hash %q", secret, hash)
	}
	rules := []auth.Rule{{Repositories: []string{"ci/**"}, Actions: []string{"pull", "push"}}}
	if err := st.CreateRobot(t.Context(), &storage.Robot{Name: "ci", SecretHash: hash, Rules: auth.EncodeRobotRules(rules),
		ExpiresAt: now.Add(time.Hour), Created: now}); err != nil {
		t.Fatal(err)
	}
	id, err := a.Login(t.Context(), "robot:ci", secret)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Rights(id, "ci/app"); got != auth.Pull|auth.Push {
		t.Errorf("robot on ci/app: %v", got)
	}
	if got := a.Rights(id, "other"); got != auth.Pull {
		t.Errorf("robot on other: %v (the configured \"*\" rule grants pull)", got)
	}
	if _, err := a.Login(t.Context(), "robot:ci", secret+"x"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("wrong secret: %v", err)
	}
	// The colon-free login name (RFC 7617; oras and helm refuse a ':' in
	// a user name) is the same robot, with the same identity.
	if id, err := a.Login(t.Context(), "robot$ci", secret); err != nil || id.Name != "robot:ci" || id.Kind != auth.Robot {
		t.Errorf("robot$ci logs in: %+v %v", id, err)
	}
	if _, err := a.Login(t.Context(), "robot$ci", secret+"x"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("robot$ci, wrong secret: %v", err)
	}
	if err := st.SetRobotDisabled(t.Context(), "ci", true); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Current(t.Context(), "robot:ci"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("disabled robot is current: %v", err)
	}
	st.SetRobotDisabled(t.Context(), "ci", false)
	if _, err := a.Current(t.Context(), "robot:ci"); err != nil {
		t.Errorf("enabled again: %v", err)
	}
	now = now.Add(time.Hour)
	if _, err := a.Login(t.Context(), "robot:ci", secret); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("expired robot logs in: %v", err)
	}
	if _, err := a.Login(t.Context(), "robot:nobody", secret); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("unknown robot: %v", err)
	}
}

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := auth.NewLimiter(3, time.Minute, func() time.Time { return now })
	for i := range 3 {
		if b, _ := l.Blocked("1.2.3.4"); b {
			t.Fatalf("blocked after %d failures", i)
		}
		l.Fail("1.2.3.4")
	}
	b, left := l.Blocked("1.2.3.4")
	if !b || left != time.Minute {
		t.Fatalf("after 3 failures: blocked %v for %s", b, left)
	}
	if b, _ := l.Blocked("5.6.7.8"); b {
		t.Error("another source is blocked")
	}
	now = now.Add(59 * time.Second)
	if b, left := l.Blocked("1.2.3.4"); !b || left != time.Second {
		t.Errorf("59 s later: %v %s", b, left)
	}
	now = now.Add(time.Second)
	if b, _ := l.Blocked("1.2.3.4"); b {
		t.Error("still blocked once the window ended")
	}
}

func newSigner(t *testing.T, now func() time.Time) *auth.Signer {
	t.Helper()
	key, err := auth.LoadOrCreateKey(filepath.Join(t.TempDir(), "token-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := auth.NewSigner(key, "packreg", "packreg", 5*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token-key.pem")
	k1, err := auth.LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	k2, err := auth.LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Public().(*ecdsa.PublicKey).Equal(k2.Public()) {
		t.Error("second start made a new key")
	}
	weak, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := auth.NewSigner(weak, "i", "s", time.Minute, time.Now); err == nil {
		t.Error("a P-384 key was taken for ES256")
	}
}

func TestTokens(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := newSigner(t, clock)
	grant := []auth.Scope{{Type: "repository", Name: "a", Actions: []string{"pull"}}}
	tok, err := s.Issue("alice", grant, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" || c.Grant("a") != auth.Pull || c.Grant("b") != 0 {
		t.Fatalf("claims %+v", c)
	}

	// Forged or stale tokens, every one refused.
	sign := func(m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		tk, err := jwt.NewWithClaims(m, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	base := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "packreg", "aud": "packreg", "sub": "alice", "iat": now.Unix(),
			"nbf": now.Unix(), "exp": now.Add(time.Minute).Unix(), "access": grant}
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(s.Public())
	with := func(k string, v any) jwt.MapClaims { c := base(); c[k] = v; return c }
	without := func(k string) jwt.MapClaims { c := base(); delete(c, k); return c }
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	unsigned := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		b, _ := json.Marshal(base())
		return h + "." + base64.RawURLEncoding.EncodeToString(b) + "."
	}
	for name, tk := range map[string]string{
		"alg none":             unsigned(),
		"HS256 public key":     sign(jwt.SigningMethodHS256, pubDER, base()),
		"other key":            sign(jwt.SigningMethodES256, other, base()),
		"expired":              sign(jwt.SigningMethodES256, other, with("exp", now.Add(-auth.Leeway-time.Second).Unix())),
		"expired, our key":     mustIssueAt(t, s, now.Add(-5*time.Minute-auth.Leeway-time.Second)),
		"not yet valid":        sign(jwt.SigningMethodES256, other, with("nbf", now.Add(auth.Leeway+time.Minute).Unix())),
		"not yet valid, ours":  mustIssueAt(t, s, now.Add(auth.Leeway+time.Second)),
		"wrong audience":       resign(t, s, with("aud", "elsewhere")),
		"wrong issuer":         resign(t, s, with("iss", "elsewhere")),
		"no exp":               resign(t, s, without("exp")),
		"no subject":           resign(t, s, without("sub")),
		"tampered":             tok[:len(tok)-4] + "AAAA",
		"oversized":            tok + strings.Repeat("A", auth.MaxTokenSize),
		"payload swapped":      swapPayload(tok, base64.RawURLEncoding.EncodeToString(mustJSON(with("sub", "root")))),
		"not a JWT":            "abc",
		"empty":                "",
		"valid until leeway+1": mustIssueAt(t, s, now.Add(-5*time.Minute-auth.Leeway-time.Second)),
	} {
		if _, err := s.Verify(tk); !errors.Is(err, auth.ErrBadToken) {
			t.Errorf("%s: verified (%v)", name, err)
		}
	}
	// Within the leeway: still good.
	if _, err := s.Verify(mustIssueAt(t, s, now.Add(-5*time.Minute-auth.Leeway+time.Second))); err != nil {
		t.Errorf("expired within the leeway: %v", err)
	}
}

func mustIssueAt(t *testing.T, s *auth.Signer, at time.Time) string {
	t.Helper()
	tk, err := s.Issue("alice", nil, at)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// resign signs claims with the signer's own key through a token it
// issued: the header and key are right, a claim is wrong.
func resign(t *testing.T, s *auth.Signer, claims jwt.MapClaims) string {
	t.Helper()
	tk, err := auth.SignClaimsForTest(s, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

func swapPayload(tok, payload string) string {
	p := strings.Split(tok, ".")
	return p[0] + "." + payload + "." + p[2]
}

func TestParseScope(t *testing.T) {
	for in, want := range map[string]string{
		"repository:acme/app:pull,push": "repository:acme/app:pull,push",
		"registry:catalog:*":            "registry:catalog:*",
		"repository:a:b:pull":           "repository:a:b:pull",
	} {
		s, ok := auth.ParseScope(in)
		if !ok || s.String() != want {
			t.Errorf("%q: %v %v", in, s, ok)
		}
	}
	for _, in := range []string{"", "repository", "repository:pull", "repository::pull"} {
		if _, ok := auth.ParseScope(in); ok {
			t.Errorf("%q parsed", in)
		}
	}
}

func TestGrant(t *testing.T) {
	p := filepath.Join(t.TempDir(), "htpasswd")
	writeFile(t, p, htpasswdLine(t, "alice", "a"))
	a, _ := newAuthority(t, auth.Config{Htpasswd: p, Rules: []auth.Rule{
		{Repositories: []string{"a"}, Users: []string{"alice"}, Actions: []string{"pull", "push", "overwrite"}},
		{Repositories: []string{"b"}, Users: []string{"alice"}, Actions: []string{"pull"}},
	}}, time.Now)
	alice := login(t, a, "alice", "a")
	got := a.Grant(alice, []auth.Scope{
		{Type: "repository", Name: "a", Actions: []string{"pull", "push"}},
		{Type: "repository", Name: "b", Actions: []string{"pull", "push", "delete"}},
		{Type: "repository", Name: "c", Actions: []string{"pull"}},
	})
	if s := scopes(got); s != "repository:a:pull,push,overwrite repository:b:pull" {
		t.Errorf("granted %s", s)
	}
}

func scopes(ss []auth.Scope) string {
	var out []string
	for _, s := range ss {
		out = append(out, s.String())
	}
	return strings.Join(out, " ")
}
