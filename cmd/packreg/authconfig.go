package main

import (
	"crypto"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/packreg/packreg/auth"
	"github.com/packreg/packreg/storage"
)

// AuthConfig is the `auth:` section: users, rules and anonymous actions
// (package auth's Config, inline), the tokens of /token and the
// failed-login limiter. Authentication is on when it names an htpasswd
// file, admins or rules.
type AuthConfig struct {
	auth.Config `yaml:",inline"`
	Token       TokenConfig `yaml:"token"`
	Login       LoginConfig `yaml:"login"`
}

// TokenConfig is `auth.token:`.
type TokenConfig struct {
	// Key is a PEM private key file (ECDSA P-256, Ed25519 or RSA ≥ 2048);
	// empty: DATA/token-key.pem, made at the first start (mode 0600).
	Key string `yaml:"key"`
	// TTL is how long a token is valid (at most an hour).
	TTL time.Duration `yaml:"ttl"`
	// Realm is the token endpoint's URL in challenges; empty: this
	// server's /token as the client reached it.
	Realm string `yaml:"realm"`
	// Service is the token's audience and the challenge's service.
	Service string `yaml:"service"`
}

// LoginConfig is `auth.login:`: failed logins per source address.
type LoginConfig struct {
	MaxFailures int           `yaml:"max_failures"` // then 429 until the window ends
	Window      time.Duration `yaml:"window"`
}

// TLSConfig is `tls:`: PEM files, re-read when they change.
type TLSConfig struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

func defaultAuthConfig() AuthConfig {
	return AuthConfig{
		Config: auth.Config{Admins: []string{}, Rules: []auth.Rule{}, Anonymous: []string{}},
		Token:  TokenConfig{TTL: 5 * time.Minute, Service: "packreg"},
		Login:  LoginConfig{MaxFailures: 10, Window: time.Minute},
	}
}

// validateAuth checks the auth and TLS sections and the startup rules
// of listening beyond loopback.
func (c *Config) validateAuth(host string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := c.Auth.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Auth.Token.TTL <= 0 || c.Auth.Token.TTL > time.Hour {
		bad("auth.token.ttl must be positive and at most 1h, got %s", c.Auth.Token.TTL)
	}
	if c.Auth.Token.Service == "" {
		bad("auth.token.service is empty")
	}
	if c.Auth.Login.MaxFailures <= 0 || c.Auth.Login.Window <= 0 {
		bad("auth.login.max_failures and auth.login.window must be positive")
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		bad("tls.cert and tls.key go together: set both or neither")
	}
	if !isLoopback(host) {
		switch {
		case c.Auth.Enabled() && c.TLS.Cert == "" && !c.InsecureHTTP:
			bad("addr %q is not a loopback address and tls is not configured: passwords and tokens would "+
				"cross the network in clear; set tls.cert and tls.key, or pass --insecure-http "+
				"(insecure_http: true) when a TLS proxy in front terminates it", c.Addr)
		case !c.Auth.Enabled() && !c.AllowAnonymous:
			bad("addr %q is not a loopback address and no authentication is configured: "+
				"anyone who can reach it could push and delete; configure auth (auth.htpasswd), pass --allow-anonymous "+
				"(allow_anonymous: true) to serve anonymously, or listen on 127.0.0.1", c.Addr)
		}
	}
	return errs
}

// newGate builds the auth gate over robots, or nil when authentication
// is off.
func newGate(c Config, robots storage.Robots, log *slog.Logger) (*gate, error) {
	if !c.Auth.Enabled() {
		return nil, nil
	}
	a, err := auth.New(c.Auth.Config, robots, time.Now)
	if err != nil {
		return nil, err
	}
	key, err := tokenKey(c)
	if err != nil {
		return nil, err
	}
	signer, err := auth.NewSigner(key, c.Auth.Token.Service, c.Auth.Token.Service, c.Auth.Token.TTL, time.Now)
	if err != nil {
		return nil, err
	}
	return &gate{auth: a, signer: signer, log: log, service: c.Auth.Token.Service, realm: c.Auth.Token.Realm, now: time.Now,
		limiter: auth.NewLimiter(c.Auth.Login.MaxFailures, c.Auth.Login.Window, time.Now)}, nil
}

// tokenKey is the signing key: configured, or kept in the data directory.
func tokenKey(c Config) (crypto.Signer, error) {
	if c.Auth.Token.Key != "" {
		return auth.LoadKey(c.Auth.Token.Key)
	}
	if err := os.MkdirAll(c.Data, 0o750); err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	return auth.LoadOrCreateKey(filepath.Join(c.Data, "token-key.pem"))
}
