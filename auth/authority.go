package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// ErrBadCredentials is a login that failed: unknown user, wrong password,
// a disabled, expired or deleted robot. Which one is never said.
var ErrBadCredentials = errors.New("invalid username or password")

// Kind tells identities apart.
type Kind uint8

const (
	Anonymous Kind = iota
	User
	Robot
)

// RobotPrefix starts every robot identity: "robot:ci".
const RobotPrefix = "robot:"

// RobotLoginPrefix is the colon-free form of RobotPrefix a robot may log
// in with ("robot$ci", Harbor's spelling): RFC 7617 forbids ':' in a Basic
// user-id, and oras and helm refuse to store such a name.
const RobotLoginPrefix = "robot$"

// AnonymousName is the subject of an anonymous token.
const AnonymousName = "anonymous"

// Identity is who a request is from, as read on this request.
type Identity struct {
	Name  string // user name, "robot:<name>", or "anonymous"
	Kind  Kind
	robot []compiledRule // a robot's own rules
}

// AnonymousIdentity is the caller without credentials.
func AnonymousIdentity() Identity { return Identity{Name: AnonymousName, Kind: Anonymous} }

// Config is the `auth:` section of the server's config.
type Config struct {
	// Htpasswd is the path of the users file; empty: no users.
	Htpasswd string `yaml:"htpasswd"`
	// Admins are users with every right and the admin API.
	Admins []string `yaml:"admins"`
	// Rules grant actions per repository pattern; first match wins.
	Rules []Rule `yaml:"rules"`
	// Anonymous are the actions anyone may do without credentials, on
	// every repository.
	Anonymous []string `yaml:"anonymous"`
}

// Enabled reports whether the section turns authentication on.
func (c Config) Enabled() bool {
	return c.Htpasswd != "" || len(c.Admins) > 0 || len(c.Rules) > 0
}

// Validate checks the section without reading any file.
func (c Config) Validate() error {
	var errs []error
	if _, err := compileRules(c.Rules, true); err != nil {
		errs = append(errs, fmt.Errorf("auth.rules: %w", err))
	}
	if _, err := ParseActions(c.Anonymous); err != nil {
		errs = append(errs, fmt.Errorf("auth.anonymous: %w", err))
	}
	for _, a := range c.Admins {
		if a == "" || a == "*" || strings.HasPrefix(a, RobotPrefix) {
			errs = append(errs, fmt.Errorf("auth.admins: %q: admins are htpasswd users by name", a))
		}
	}
	if c.Enabled() && c.Htpasswd == "" {
		errs = append(errs, errors.New("auth: rules or admins without auth.htpasswd: nobody could log in but robots, and only an admin creates robots"))
	}
	return errors.Join(errs...)
}

// Authority answers who a caller is and what it may do, from the
// htpasswd file and the robots as they are now.
type Authority struct {
	users  *Htpasswd
	robots storage.Robots
	admins []string
	rules  []compiledRule
	anon   Action
	now    func() time.Time
}

// New loads the users file and compiles the rules.
func New(c Config, robots storage.Robots, now func() time.Time) (*Authority, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	rules, _ := compileRules(c.Rules, true)
	anon, _ := ParseActions(c.Anonymous)
	a := &Authority{robots: robots, admins: c.Admins, rules: rules, anon: anon, now: now}
	if c.Htpasswd != "" {
		u, err := LoadHtpasswd(c.Htpasswd)
		if err != nil {
			return nil, err
		}
		a.users = u
	}
	return a, nil
}

// AnonymousActions are the actions granted without credentials.
func (a *Authority) AnonymousActions() Action { return a.anon }

// Login checks a user's or robot's credentials. Basic credentials split
// at the first ':', so "robot:ci" with its secret arrives as the name
// "robot" and the password "ci:<secret>": put back together here (no
// htpasswd user is named "robot", and secrets have no ':'). "robot$ci" is
// the same robot.
func (a *Authority) Login(ctx context.Context, name, secret string) (Identity, error) {
	if rest, ok := strings.CutPrefix(name+":"+secret, RobotPrefix); ok && name == "robot" {
		name, secret, _ = strings.Cut(rest, ":")
		name = RobotPrefix + name
	}
	if rest, ok := strings.CutPrefix(name, RobotLoginPrefix); ok {
		name = RobotPrefix + rest
	}
	if strings.HasPrefix(name, RobotPrefix) {
		return a.robotLogin(ctx, name, secret)
	}
	if a.users == nil || name == "" || !a.users.Verify(name, secret) {
		return Identity{}, ErrBadCredentials
	}
	return Identity{Name: name, Kind: User}, nil
}

// Current returns the identity named name as it is now (a token's
// subject): ErrBadCredentials when the user left the file or the robot
// is disabled, expired or deleted.
func (a *Authority) Current(ctx context.Context, name string) (Identity, error) {
	switch {
	case name == AnonymousName:
		return AnonymousIdentity(), nil
	case strings.HasPrefix(name, RobotPrefix):
		r, err := a.robot(ctx, name)
		if err != nil {
			return Identity{}, err
		}
		return robotIdentity(name, r)
	case a.users != nil && a.users.Exists(name):
		return Identity{Name: name, Kind: User}, nil
	}
	return Identity{}, ErrBadCredentials
}

// robot reads an active robot; storage failures pass through.
func (a *Authority) robot(ctx context.Context, name string) (*storage.Robot, error) {
	r, err := a.robots.GetRobot(ctx, strings.TrimPrefix(name, RobotPrefix))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, err
	}
	if r.Disabled || !r.ExpiresAt.IsZero() && !a.now().Before(r.ExpiresAt) {
		return nil, ErrBadCredentials
	}
	return r, nil
}

func (a *Authority) robotLogin(ctx context.Context, name, secret string) (Identity, error) {
	r, err := a.robot(ctx, name)
	if err != nil {
		return Identity{}, err
	}
	if !CheckSecret(r.SecretHash, secret) {
		return Identity{}, ErrBadCredentials
	}
	return robotIdentity(name, r)
}

func robotIdentity(name string, r *storage.Robot) (Identity, error) {
	rules, err := DecodeRobotRules(r.Rules)
	if err != nil {
		return Identity{}, fmt.Errorf("robot %s: stored rules: %w", name, err)
	}
	c, err := compileRules(rules, false)
	if err != nil {
		return Identity{}, fmt.Errorf("robot %s: stored rules: %w", name, err)
	}
	return Identity{Name: name, Kind: Robot, robot: c}, nil
}

// IsAdmin reports whether id may use the admin API.
func (a *Authority) IsAdmin(id Identity) bool {
	return id.Kind == User && slices.Contains(a.admins, id.Name)
}

// Rights are the actions id may do on repo: the anonymous actions, the
// first configured rule matching (repo, id), a robot's own first
// matching rule; all of them for an admin.
func (a *Authority) Rights(id Identity, repo string) Action {
	if a.IsAdmin(id) {
		return AllActions
	}
	got := a.anon
	if id.Kind == Anonymous {
		return got
	}
	if acts, ok := match(a.rules, id, repo); ok {
		got |= acts
	}
	if acts, ok := match(id.robot, id, repo); ok {
		got |= acts
	}
	return got
}

// Grant is what a token request for scopes gets: for each scope of a
// valid repository name, the requested actions id has ("*" asks for
// all; asking for push also grants overwrite when id has it, since
// clients cannot name it);
// registry:catalog:* for any identity (the catalog is filtered anyway);
// registry:admin:* (the admin API with a token) for an admin.
func (a *Authority) Grant(id Identity, scopes []Scope) []Scope {
	var out []Scope
	for _, s := range scopes {
		switch {
		case s.Type == "repository" && oci.ValidName(s.Name):
			// Only a repository's name: another one (invalid UTF-8,
			// say) would come back from the token's JSON changed,
			// granting on a name the rights were not checked on.
			var want Action
			for _, n := range s.Actions {
				if n == "*" {
					want = AllActions
				}
				if x, ok := ParseAction(n); ok {
					want |= x
				}
			}
			if want.Has(Push) {
				want |= Overwrite
			}
			if got := want & a.Rights(id, s.Name); got != 0 {
				out = append(out, Scope{Type: s.Type, Name: s.Name, Actions: got.Names()})
			}
		case s.Type == "registry" && s.Name == "catalog":
			out = append(out, Scope{Type: "registry", Name: "catalog", Actions: []string{"*"}})
		case s.Type == "registry" && s.Name == "admin" && a.IsAdmin(id):
			out = append(out, Scope{Type: "registry", Name: "admin", Actions: []string{"*"}})
		}
		if len(out) == maxScopes {
			break
		}
	}
	return out
}

// Robot names: lowercase, like repository components. Compiled on first
// use: the bounded repetition makes a ~50 KB program that a server
// without robots would otherwise hold from its start.
var robotName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
})

// ValidRobotName reports whether name (without "robot:") is a robot name.
func ValidRobotName(name string) bool { return robotName().MatchString(name) }

// NewSecret returns a robot secret and the hash to store.
func NewSecret() (secret, hash string) {
	b := make([]byte, 32)
	rand.Read(b)
	secret = "packreg_" + base64.RawURLEncoding.EncodeToString(b)
	return secret, hashSecret(secret)
}

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// CheckSecret compares a secret with a stored hash in constant time.
func CheckSecret(hash, secret string) bool {
	return subtle.ConstantTimeCompare([]byte(hash), []byte(hashSecret(secret))) == 1
}

// ValidateRobotRules checks a robot's rules (no users: they are its own).
func ValidateRobotRules(rules []Rule) error {
	_, err := compileRules(rules, false)
	return err
}

// EncodeRobotRules is the stored form of a robot's rules.
func EncodeRobotRules(rules []Rule) string {
	b, _ := json.Marshal(rules)
	return string(b)
}

// DecodeRobotRules reads the stored form.
func DecodeRobotRules(s string) ([]Rule, error) {
	var rules []Rule
	if err := json.Unmarshal([]byte(s), &rules); err != nil {
		return nil, err
	}
	return rules, nil
}
