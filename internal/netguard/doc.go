// Package netguard is the network policy for talking to remote registries,
// which are attacker-controlled: which addresses may be dialed, where a
// chain of requests (redirects, token realms, upload locations) may lead,
// and which origins may receive credentials.
//
// Addresses are judged when dialing, on the address actually connected to
// after DNS resolution, so a name that resolves (or rebinds) to a
// forbidden address is refused too:
//
//   - link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10,
//     fd00:ec2::254, multicast) are never dialed;
//   - private and loopback addresses are dialed when a chain starts there
//     (internal registries are the normal case), but a chain that reached
//     a public address may not come back to them;
//   - a chain that used https never continues over plain http.
//
// A Trail is one chain. Transport follows redirects on the trail of the
// request that was redirected by itself; a caller that makes a request on
// an answer's word (a token realm from a challenge, an upload Location)
// passes the trail on (Trail.Fork) in the request context (WithTrail).
//
// Binding is where credentials may go: the origin (scheme, host, port)
// they were entered for, and token realms on that origin, on the same
// registrable domain over the same scheme and port, or listed by the
// operator. Transport strips Authorization from every other request and
// from every redirected one.
//
// The classification of addresses (Classify) is injectable so that tests,
// which can only use loopback, can declare 127.0.0.2 public; production
// code uses the real one.
//
// netguard is a leaf: it imports nothing from packreg, so that any HTTP
// client can be put behind it. The mirror's remote client is the one
// that is; go-containerregistry's remote package was tried and makes
// refusals of its own that this policy does not (mirror's doc says which).
package netguard
