package mirror

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/packreg/packreg/internal/netguard"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// Settings is one mirror or upstream as the API, the CLI and the config
// file give it. Credentials are write-only: they are stored, used for the
// remote's host, and never shown again.
type Settings struct {
	Name string `json:"name" yaml:"name"`
	// Kind is "mirror" or "upstream"; the API sets it from the path.
	Kind string `json:"kind,omitempty" yaml:"kind"`
	URL  string `json:"url" yaml:"url"`
	// Include and Exclude are pack name globs (* within a path segment,
	// ** across); no Include means every pack.
	Include []string `json:"include,omitempty" yaml:"include"`
	Exclude []string `json:"exclude,omitempty" yaml:"exclude"`
	// Versions is a semver range ("" for every version).
	Versions string `json:"versions,omitempty" yaml:"versions"`
	// States are the lifecycle states copied (default active and
	// deprecated: archived packs stay home unless listed).
	States []string `json:"states,omitempty" yaml:"states"`
	// Prefix is prepended to pack names on the other side: a mirror
	// stores acme/rules as <prefix>/acme/rules, an upstream's acme/rules
	// is <prefix>/acme/rules here (and pull-through serves that namespace).
	Prefix string `json:"prefix,omitempty" yaml:"prefix"`
	// Schedule runs a sync that often (0: only on publish and on demand);
	// ParitySchedule a parity check.
	Schedule       Duration `json:"schedule,omitempty" yaml:"schedule"`
	ParitySchedule Duration `json:"paritySchedule,omitempty" yaml:"parity_schedule"`
	// Concurrency bounds the versions and blobs in flight (default 4).
	Concurrency int `json:"concurrency,omitempty" yaml:"concurrency"`
	// Insecure skips TLS verification (plain HTTP is chosen by the URL).
	Insecure bool `json:"insecure,omitempty" yaml:"insecure"`
	// OnPublish syncs a mirror as soon as a covered pack changes here
	// (default true); PullThrough lets a pull that misses fetch from an
	// upstream (default true); Lifecycle carries lifecycle changes to a
	// packreg on the other side (default true).
	OnPublish   *bool `json:"onPublish,omitempty" yaml:"on_publish"`
	PullThrough *bool `json:"pullThrough,omitempty" yaml:"pull_through"`
	Lifecycle   *bool `json:"lifecycle,omitempty" yaml:"lifecycle"`
	// AuthRealms are token realms (http(s)://host[:port]) that may receive
	// the credentials besides the remote's own origin and the other hosts
	// of its registrable domain on the same scheme and port: a token
	// service on another port or domain.
	AuthRealms []string `json:"authRealms,omitempty" yaml:"auth_realms"`
	// Credentials for the remote; never returned. They are bound to the
	// URL's origin and the AuthRealms they were given with: changing
	// either drops them unless new ones come along.
	Credentials *Credentials `json:"credentials,omitempty" yaml:"credentials"`
}

// Duration is a time.Duration written "15m" in JSON and YAML.
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func on(b *bool) bool { return b == nil || *b }

// nameRE is compiled on first use (a mirror added or changed), not held
// from the server's start: the bounded repetition makes a ~50 KB program.
var nameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
})

// Limits on what a remote may be asked to do.
const (
	maxConcurrency = 64
	minSchedule    = 10 * time.Second
)

// Validate checks settings of s.Kind as Create would (the config file's).
func (s Settings) Validate() error { return s.check(s.Kind) }

// check validates s for kind and fills the defaults.
func (s *Settings) check(kind string) error {
	if kind != storage.MirrorPush && kind != storage.MirrorPull {
		return fmt.Errorf("kind %q: want mirror or upstream", kind)
	}
	s.Kind = kind
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if !nameRE().MatchString(s.Name) {
		bad("name %q: want 1 to 63 lowercase letters, digits, '.', '_' or '-'", clip(s.Name))
	}
	u, err := url.Parse(s.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		bad("url %q: want http://host[:port] or https://host[:port]", clip(s.URL))
	case u.User != nil:
		bad("url: put credentials in \"credentials\", not in the URL")
	case forbiddenHost(u.Hostname()):
		bad("url %s: a link-local or metadata address, which packreg never connects to", clip(u.Host))
	default:
		s.URL = u.Scheme + "://" + u.Host
	}
	s.checkRealms(bad)
	// An empty list means what no list means, and the stored record
	// omits both: settle on nil so settings read back as they were given.
	s.Include, s.Exclude, s.AuthRealms = nilIfEmpty(s.Include), nilIfEmpty(s.Exclude), nilIfEmpty(s.AuthRealms)
	if _, err := NewFilter(s.Include, s.Exclude, s.Versions, s.States); err != nil {
		bad("%v", err)
	}
	if len(s.States) == 0 {
		s.States = append([]string(nil), DefaultStates...)
	}
	s.Prefix = strings.Trim(s.Prefix, "/")
	if s.Prefix != "" && !oci.ValidName(s.Prefix) {
		bad("prefix %q: want a repository path like team/mirror", clip(s.Prefix))
	}
	if s.Concurrency == 0 {
		s.Concurrency = 4
	}
	if s.Concurrency < 1 || s.Concurrency > maxConcurrency {
		bad("concurrency %d: want 1 to %d", s.Concurrency, maxConcurrency)
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"schedule", s.Schedule}, {"paritySchedule", s.ParitySchedule}} {
		if d.v != 0 && time.Duration(d.v) < minSchedule {
			bad("%s %s: want 0 (none) or at least %s", d.name, time.Duration(d.v), minSchedule)
		}
	}
	if c := s.Credentials; c != nil && c.Token != "" && (c.Username != "" || c.Password != "") {
		bad("credentials: give a token or a username and password, not both")
	}
	if len(errs) > 0 {
		return &InputError{Msg: strings.Join(errs, "; ")}
	}
	return nil
}

// maxAuthRealms bounds the list: a handful of token services at most.
const maxAuthRealms = 8

// checkRealms validates AuthRealms and writes them as origins.
func (s *Settings) checkRealms(bad func(string, ...any)) {
	if len(s.AuthRealms) > maxAuthRealms {
		bad("authRealms: at most %d", maxAuthRealms)
		return
	}
	https := strings.HasPrefix(s.URL, "https:")
	seen := map[string]bool{}
	out := s.AuthRealms[:0:0]
	for _, r := range s.AuthRealms {
		o, err := netguard.ParseOrigin(r)
		switch {
		case err != nil:
			bad("authRealms: %v", err)
		case https && o.Scheme != "https":
			bad("authRealms: %s is plain http; the remote is https", clip(r))
		case forbiddenHost(o.Host):
			bad("authRealms: %s is a link-local or metadata address", clip(r))
		case !seen[o.String()]:
			seen[o.String()] = true
			out = append(out, o.String())
		}
	}
	s.AuthRealms = out
}

// forbiddenHost reports whether host is an address never dialed. Names
// are judged when dialing, on what they resolve to.
func forbiddenHost(host string) bool {
	a, err := netip.ParseAddr(host)
	return err == nil && netguard.Classify(a) == netguard.Forbidden
}

// InputError is a request the caller must change (400).
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// filter compiles the settings' selection (checked already).
func (s *Settings) filter() *Filter {
	f, err := NewFilter(s.Include, s.Exclude, s.Versions, s.States)
	if err != nil {
		panic("mirror: unchecked settings: " + err.Error()) // check ran when they were stored
	}
	return f
}

// names maps pack names between this registry and the remote.
type names struct{ prefix string }

// there is the name on the prefixed side of name.
func (n names) there(name string) string {
	if n.prefix == "" {
		return name
	}
	return n.prefix + "/" + name
}

// back is the unprefixed name of a prefixed one, false when it is not
// under the prefix.
func (n names) back(name string) (string, bool) {
	if n.prefix == "" {
		return name, true
	}
	rest, ok := strings.CutPrefix(name, n.prefix+"/")
	return rest, ok && rest != ""
}

func nilIfEmpty(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}
