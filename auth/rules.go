package auth

import (
	"fmt"
	"github.com/packreg/packreg/oci"
	"regexp"
	"slices"
	"strings"
)

// Action is one right on a repository.
type Action uint8

// The actions. Push creates tags and versions; Overwrite moves a tag that
// points elsewhere; Delete removes; Lifecycle deprecates, archives,
// restores.
const (
	Pull Action = 1 << iota
	Push
	Overwrite
	Delete
	Lifecycle

	AllActions = Pull | Push | Overwrite | Delete | Lifecycle
)

var actionNames = []struct {
	a    Action
	name string
}{{Pull, "pull"}, {Push, "push"}, {Overwrite, "overwrite"}, {Delete, "delete"}, {Lifecycle, "lifecycle"}}

// ParseAction returns the action named s.
func ParseAction(s string) (Action, bool) {
	for _, n := range actionNames {
		if n.name == s {
			return n.a, true
		}
	}
	return 0, false
}

// ParseActions parses a list of action names; an unknown one is an error.
func ParseActions(names []string) (Action, error) {
	var set Action
	for _, s := range names {
		a, ok := ParseAction(s)
		if !ok {
			return 0, fmt.Errorf("unknown action %q (want pull, push, overwrite, delete or lifecycle)", s)
		}
		set |= a
	}
	return set, nil
}

// Has reports whether every action of want is in a.
func (a Action) Has(want Action) bool { return a&want == want }

// Names lists the actions of a, in a fixed order.
func (a Action) Names() []string {
	out := []string{}
	for _, n := range actionNames {
		if a&n.a != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

func (a Action) String() string { return strings.Join(a.Names(), ",") }

// Rule grants actions on the repositories matching a pattern to some
// identities. Patterns are oci.NameGlob's: "*" within one path
// component, "**" across components ("acme/**" is every repository under
// acme/), "?" one character.
type Rule struct {
	Repositories []string `yaml:"repositories" json:"repositories"`
	Users        []string `yaml:"users,omitempty" json:"users,omitempty"`
	Actions      []string `yaml:"actions" json:"actions"`
}

// compiledRule is a Rule ready to match.
type compiledRule struct {
	repos   []*regexp.Regexp
	users   []string
	actions Action
}

// compileRules checks and compiles rules; withUsers says whether each
// rule must name its users (the config's do, a robot's do not).
func compileRules(rules []Rule, withUsers bool) ([]compiledRule, error) {
	out := make([]compiledRule, 0, len(rules))
	for i, r := range rules {
		var c compiledRule
		if len(r.Repositories) == 0 {
			return nil, fmt.Errorf("rule %d: no repositories", i+1)
		}
		for _, p := range r.Repositories {
			re, err := oci.NameGlob(p)
			if err != nil {
				return nil, fmt.Errorf("rule %d: %w", i+1, err)
			}
			c.repos = append(c.repos, re)
		}
		if withUsers && len(r.Users) == 0 {
			return nil, fmt.Errorf("rule %d: no users (\"*\" is any authenticated identity)", i+1)
		}
		if !withUsers && len(r.Users) > 0 {
			return nil, fmt.Errorf("rule %d: a robot's rule names no users", i+1)
		}
		for _, u := range r.Users {
			if u == "" {
				return nil, fmt.Errorf("rule %d: empty user name", i+1)
			}
		}
		c.users = r.Users
		a, err := ParseActions(r.Actions)
		if err != nil {
			return nil, fmt.Errorf("rule %d: %w", i+1, err)
		}
		c.actions = a
		out = append(out, c)
	}
	return out, nil
}

// match returns the actions of the first rule matching repo and (when
// the rules name users) the identity, and whether one matched.
func match(rules []compiledRule, id Identity, repo string) (Action, bool) {
	for _, r := range rules {
		if !slices.ContainsFunc(r.repos, func(re *regexp.Regexp) bool { return re.MatchString(repo) }) {
			continue
		}
		if r.users != nil && !slices.ContainsFunc(r.users, func(u string) bool {
			return u == id.Name || u == "*" && id.Kind != Anonymous
		}) {
			continue
		}
		return r.actions, true
	}
	return 0, false
}
