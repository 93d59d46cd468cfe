package netguard

import "net/netip"

// Class is what an address is to the policy.
type Class int

const (
	// Public addresses may be dialed at any point of a chain.
	Public Class = iota
	// Private addresses (loopback, RFC 1918, unique local, shared
	// 100.64/10, unspecified) may start a chain, never follow a public hop.
	Private
	// Forbidden addresses (link-local, cloud metadata, multicast) are
	// never dialed.
	Forbidden
)

func (c Class) String() string {
	switch c {
	case Public:
		return "public"
	case Private:
		return "private or loopback"
	}
	return "link-local or metadata"
}

// Classifier judges an address. Classify is the production one.
type Classifier func(netip.Addr) Class

var (
	// AWS's IPv6 instance metadata service sits inside fc00::/7, which is
	// otherwise private: it is named on its own.
	awsMetadataV6 = netip.MustParseAddr("fd00:ec2::254")
	nat64         = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local    = netip.MustParsePrefix("64:ff9b:1::/48")
	sharedV4      = netip.MustParsePrefix("100.64.0.0/10")
	thisNetV4     = netip.MustParsePrefix("0.0.0.0/8")
	siteLocalV6   = netip.MustParsePrefix("fec0::/10")
	broadcastV4   = netip.MustParseAddr("255.255.255.255")
)

// Classify is the real classification of a.
func Classify(a netip.Addr) Class {
	a = a.Unmap()
	if nat64.Contains(a.WithZone("")) {
		// A NAT64 gateway would carry 64:ff9b::a9fe:a9fe to 169.254.169.254.
		b := a.As16()
		if c := Classify(netip.AddrFrom4([4]byte(b[12:]))); c != Public {
			return c
		}
	}
	if nat64Local.Contains(a.WithZone("")) {
		// RFC 8215's local-use NAT64 prefix is for a site's own
		// translator, so private at best; which RFC 6052 layout the site
		// uses is unknown, so an address forbidden in any of them is.
		for _, v4 := range nat64Local4(a) {
			if Classify(netip.AddrFrom4(v4)) == Forbidden {
				return Forbidden
			}
		}
		return Private
	}
	switch {
	case !a.IsValid(), a.IsLinkLocalUnicast(), a.IsMulticast(), a == broadcastV4, a.WithZone("") == awsMetadataV6:
		return Forbidden
	case a.IsLoopback(), a.IsPrivate(), a.IsUnspecified(),
		sharedV4.Contains(a), thisNetV4.Contains(a), siteLocalV6.Contains(a.WithZone("")):
		return Private
	}
	return Public
}

// nat64Local4 is the IPv4 address a carries under each RFC 6052 layout a
// prefix inside 64:ff9b:1::/48 may have (/48, /56, /64, /96); the layouts
// skip bits 64-71.
func nat64Local4(a netip.Addr) [][4]byte {
	b := a.As16()
	return [][4]byte{
		{b[6], b[7], b[9], b[10]},
		{b[7], b[9], b[10], b[11]},
		{b[9], b[10], b[11], b[12]},
		{b[12], b[13], b[14], b[15]},
	}
}
