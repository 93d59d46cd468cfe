package netguard

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// Origin is a scheme, host and port, the unit credentials are bound to.
// The port is always explicit (443 for https, 80 for http), the host
// lowercase, so two spellings of one origin compare equal.
type Origin struct {
	Scheme, Host, Port string
}

// OriginOf is the origin of u; the zero Origin when u is not http(s).
func OriginOf(u *url.URL) Origin {
	if u == nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return Origin{}
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return Origin{Scheme: u.Scheme, Host: strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")), Port: port}
}

// ParseOrigin reads http(s)://host[:port]. A path is dropped; user
// information, a query or a fragment is an error (none belong in an
// origin, and user information would be a credential in the wrong place).
func ParseOrigin(s string) (Origin, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return Origin{}, fmt.Errorf("%q: want http://host[:port] or https://host[:port]", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return Origin{}, fmt.Errorf("%q: an origin has no user, query or fragment", s)
	}
	return OriginOf(u), nil
}

// IsZero reports whether o is no origin.
func (o Origin) IsZero() bool { return o == Origin{} }

// String is scheme://host:port, the port always written.
func (o Origin) String() string {
	if o.IsZero() {
		return ""
	}
	return o.Scheme + "://" + net.JoinHostPort(o.Host, o.Port)
}

// Binding says where credentials may be sent: to Origin, the one they were
// entered for, and to token realms. The zero Binding sends them nowhere.
type Binding struct {
	Origin Origin
	// Realms are token realm origins the operator listed (authRealms).
	Realms []Origin
}

// Home reports whether u is on the origin the credentials were entered for.
func (b Binding) Home(u *url.URL) bool {
	return !b.Origin.IsZero() && OriginOf(u) == b.Origin
}

// Realm reports whether a token realm at u may receive the credentials:
// on their origin, listed in Realms, or another host name of the same
// registrable domain (auth.docker.io for registry-1.docker.io) over the
// same scheme and port. Never another port of the same host, unless
// listed: on a shared host another port may be anybody's.
func (b Binding) Realm(u *url.URL) bool {
	o := OriginOf(u)
	switch {
	case o.IsZero() || b.Origin.IsZero():
		return false
	case o == b.Origin:
		return true
	}
	for _, r := range b.Realms {
		if o == r {
			return true
		}
	}
	return o.Scheme == b.Origin.Scheme && o.Port == b.Origin.Port && o.Host != b.Origin.Host &&
		sameSite(o.Host, b.Origin.Host)
}

// sameSite reports whether two host names have the same registrable
// domain (public suffix plus one label). Addresses have none.
func sameSite(a, b string) bool {
	if _, err := netip.ParseAddr(a); err == nil {
		return false
	}
	if _, err := netip.ParseAddr(b); err == nil {
		return false
	}
	ra, err := publicsuffix.EffectiveTLDPlusOne(a)
	if err != nil {
		return false
	}
	rb, err := publicsuffix.EffectiveTLDPlusOne(b)
	return err == nil && ra == rb
}
