package netguard_test

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/publicsuffix"

	"github.com/packreg/packreg/internal/netguard"
)

// FuzzRealm: a token realm named by a remote's challenge gets the
// credentials only where the documented rules allow: their own origin, a
// listed realm, or another host of the same registrable domain over the
// same scheme and port; never another port of the same host, never an
// address literal, whatever the spelling of the URL. Seeds are in
// testdata/fuzz; `make fuzz-short` fuzzes briefly.
func FuzzRealm(f *testing.F) {
	f.Add("https://registry-1.docker.io", "https://auth.docker.io/token?service=registry.docker.io", "")
	f.Fuzz(func(t *testing.T, home, realm, listed string) {
		hb, err := netguard.ParseOrigin(home)
		if err != nil {
			return
		}
		var realms []netguard.Origin
		lo, err := netguard.ParseOrigin(listed)
		if err == nil {
			realms = append(realms, lo)
		}
		u, err := url.Parse(realm)
		if err != nil {
			return
		}
		b := netguard.Binding{Origin: hb, Realms: realms}
		ok, o := b.Realm(u), netguard.OriginOf(u)
		if b.Home(u) && !ok {
			t.Fatalf("home %v refuses its own origin %q", hb, realm)
		}
		if !ok || o == hb || o == lo {
			return
		}
		_, errA := netip.ParseAddr(o.Host)
		_, errB := netip.ParseAddr(hb.Host)
		site, err := publicsuffix.EffectiveTLDPlusOne(hb.Host)
		if o.IsZero() || o.Scheme != hb.Scheme || o.Port != hb.Port || o.Host == hb.Host || errA == nil || errB == nil ||
			err != nil || (o.Host != site && !strings.HasSuffix(o.Host, "."+site)) {
			t.Fatalf("credentials for %v (realms %v) would go to %q (%v)", hb, realms, realm, o)
		}
		if up := *u; isASCII(u.Host) {
			up.Host = strings.ToUpper(u.Host)
			if !b.Realm(&up) {
				t.Fatalf("realm %q is allowed, %q is not", realm, up.String())
			}
		}
	})
}

func isASCII(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r >= 0x80 })
}
