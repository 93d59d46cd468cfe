// Package repopattern is the one reading of repository patterns, shared by
// attest's policies and compliance's rules so a pattern covers the same
// repositories in both: path.Match over repository names ("*" does not
// cross "/"), a trailing "/**" for any depth below a prefix, and "**"
// alone for every repository.
//
// repopattern imports the standard library only.
package repopattern

import (
	"errors"
	"path"
	"strings"
)

// Check reports why pat is not a valid pattern, or nil.
func Check(pat string) error {
	if pat == "" {
		return errors.New("empty")
	}
	if pat == "**" {
		return nil
	}
	base := strings.TrimSuffix(pat, "/**")
	if base == "" || strings.HasPrefix(base, "/") || strings.HasSuffix(base, "/") || strings.Contains(base, "//") {
		// A repository name has no empty component: "/**" or "/acme"
		// would match none, silently (a policy that guards nothing).
		return errors.New("a path component is empty: the pattern would match no repository")
	}
	if strings.Contains(base, "**") {
		return errors.New(`"**" is only allowed alone or as a trailing "/**"`)
	}
	_, err := path.Match(base, "")
	return err
}

// Match reports whether repository repo matches pat.
func Match(pat, repo string) bool {
	if pat == "**" {
		return true
	}
	if base, ok := strings.CutSuffix(pat, "/**"); ok {
		// The prefix itself may hold a pattern: match it against as many
		// leading components as it has.
		n := strings.Count(base, "/") + 1
		parts := strings.SplitN(repo, "/", n+1)
		if len(parts) <= n {
			return false
		}
		ok, _ := path.Match(base, strings.Join(parts[:n], "/"))
		return ok
	}
	ok, _ := path.Match(pat, repo)
	return ok
}
