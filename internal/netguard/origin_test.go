package netguard_test

import (
	"net/netip"
	"net/url"
	"testing"

	"github.com/packreg/packreg/internal/netguard"
)

func TestClassify(t *testing.T) {
	for addr, want := range map[string]netguard.Class{
		"169.254.169.254":          netguard.Forbidden,
		"169.254.0.1":              netguard.Forbidden,
		"::ffff:169.254.169.254":   netguard.Forbidden,
		"64:ff9b::a9fe:a9fe":       netguard.Forbidden, // NAT64 of 169.254.169.254
		"64:ff9b:1::a9fe:a9fe":     netguard.Forbidden, // local-use NAT64 (RFC 8215), /96 layout
		"64:ff9b:1:a9fe:a9:fe00::": netguard.Forbidden, // the same, /48 layout (RFC 6052)
		"64:ff9b:1::808:808":       netguard.Private,   // a site's own translator
		"fe80::1":                  netguard.Forbidden,
		"fe80::1%lo":               netguard.Forbidden,
		"fd00:ec2::254":            netguard.Forbidden,
		"224.0.0.1":                netguard.Forbidden,
		"ff02::1":                  netguard.Forbidden,
		"255.255.255.255":          netguard.Forbidden,
		"127.0.0.1":                netguard.Private,
		"127.0.0.2":                netguard.Private,
		"::1":                      netguard.Private,
		"::ffff:127.0.0.1":         netguard.Private,
		"10.1.2.3":                 netguard.Private,
		"172.16.0.1":               netguard.Private,
		"192.168.1.1":              netguard.Private,
		"100.64.0.1":               netguard.Private,
		"0.0.0.0":                  netguard.Private,
		"::":                       netguard.Private,
		"fd12:3456::1":             netguard.Private,
		"64:ff9b::a00:1":           netguard.Private, // NAT64 of 10.0.0.1
		"8.8.8.8":                  netguard.Public,
		"2001:4860:4860::8888":     netguard.Public,
		"64:ff9b::808:808":         netguard.Public,
		"172.32.0.1":               netguard.Public,
	} {
		if got := netguard.Classify(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Classify(%s) = %s, want %s", addr, got, want)
		}
	}
}

func TestOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://Registry.Example":          "https://registry.example:443",
		"https://registry.example:443/v2/x": "https://registry.example:443",
		"http://registry.example":           "http://registry.example:80",
		"http://127.0.0.1:5000":             "http://127.0.0.1:5000",
		"https://[::1]:8443":                "https://[::1]:8443",
	} {
		o, err := netguard.ParseOrigin(in)
		if err != nil || o.String() != want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", in, o, err, want)
		}
	}
	for _, bad := range []string{"", "ftp://x", "https://", "https://u:p@x", "https://x/?q=1", "https://x/#f", "x:5000"} {
		if o, err := netguard.ParseOrigin(bad); err == nil {
			t.Errorf("ParseOrigin(%q) = %q, want an error", bad, o)
		}
	}
}

func TestBindingRealm(t *testing.T) {
	hub := netguard.Binding{Origin: mustOrigin(t, "https://registry-1.docker.io")}
	listed := netguard.Binding{Origin: mustOrigin(t, "https://reg.internal:5000"),
		Realms: []netguard.Origin{mustOrigin(t, "https://reg.internal:5001")}}
	ip := netguard.Binding{Origin: mustOrigin(t, "http://127.0.0.1:5000")}
	for _, c := range []struct {
		b     netguard.Binding
		realm string
		want  bool
	}{
		{hub, "https://registry-1.docker.io/token", true},
		{hub, "https://registry-1.docker.io:443/token", true},
		{hub, "https://auth.docker.io/token", true}, // same registrable domain
		{hub, "https://AUTH.docker.io./token", true},
		{hub, "http://auth.docker.io/token", false},       // another scheme
		{hub, "https://auth.docker.io:8443/token", false}, // another port
		{hub, "https://registry-1.docker.io:8443/token", false},
		{hub, "https://docker.io.evil.example/token", false},
		{hub, "https://evil.io/token", false},
		{netguard.Binding{Origin: mustOrigin(t, "https://reg.example.co.uk")}, "https://evil.co.uk/token", false}, // a public suffix is no site
		{netguard.Binding{Origin: mustOrigin(t, "https://a.github.io")}, "https://b.github.io/token", false},
		{listed, "https://reg.internal:5001/token", true}, // listed by the operator
		{listed, "https://reg.internal:5002/token", false},
		{ip, "http://127.0.0.1:5001/token", false}, // another port of the same host
		{ip, "http://127.0.0.2:5000/token", false},
		{ip, "http://127.0.0.1:5000/token", true},
		{netguard.Binding{}, "http://127.0.0.1:5000/token", false},
	} {
		u, _ := url.Parse(c.realm)
		if got := c.b.Realm(u); got != c.want {
			t.Errorf("%v.Realm(%s) = %v, want %v", c.b.Origin, c.realm, got, c.want)
		}
	}
	u, _ := url.Parse("https://auth.docker.io/token")
	if hub.Home(u) {
		t.Error("auth.docker.io is not registry-1.docker.io's origin")
	}
}

func TestRedact(t *testing.T) {
	u, _ := url.Parse("https://user:pw@s3.example/bucket/key?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA#frag")
	if got := netguard.Redact(u); got != "https://s3.example/bucket/key" {
		t.Fatalf("Redact = %q", got)
	}
}

func mustOrigin(t *testing.T, s string) netguard.Origin {
	t.Helper()
	o, err := netguard.ParseOrigin(s)
	if err != nil {
		t.Fatal(err)
	}
	return o
}
