// Package auth owns who a caller is and what it may do: identities (users
// of an htpasswd file, robot accounts kept in the metadata store), the
// rules that grant actions on repositories, the short-lived JWTs of the
// Docker token flow, and the limiter of failed logins. It knows no HTTP
// route: cmd/packreg's edge asks it, through Authority, on every request.
//
//   - Users: an htpasswd file of bcrypt lines only (another hash kind is a
//     startup error). The file is re-read when its size or modification
//     time changes, checked on every use, so a removed user is refused on
//     the next request.
//   - Robots: `robot:<name>` (login name also `robot$<name>`, colon-free
//     for RFC 7617 clients), created by an admin with rules of their own
//     and an expiry. The secret is 32 random bytes shown once; the store
//     keeps its SHA-256. A fast hash is enough for a secret of 256 random
//     bits (no dictionary to try, nothing to slow down), and it keeps a
//     robot's Basic login cheap on every request, where bcrypt would cost
//     tens of milliseconds each.
//   - Rules: the first rule whose repository patterns match the
//     repository AND whose users name the identity (or "*", any
//     authenticated identity) decides its actions there; admins may do
//     everything; the anonymous actions are granted to every caller. A
//     robot also has its own rules (first match wins among them), added to
//     what the configured rules grant it.
//   - Tokens: JWTs signed with one key (ES256 by default, generated at
//     first start and kept in the data directory, mode 0600; or a PEM
//     key from the config: ECDSA P-256, Ed25519 or RSA ≥ 2048). The
//     verifier accepts exactly the algorithm of that key (never "none",
//     never HS*, so a token MACed with the public key is refused), checks
//     exp, nbf, iat, aud and iss with 30 s of leeway, and refuses a token
//     over 8 KiB before parsing it. github.com/golang-jwt/jwt/v5 does the
//     parsing and signing: it is maintained, builds here, and takes the
//     allow-list (WithValidMethods) as a parser option.
//   - A token only narrows: a request with a token is allowed an action
//     when the token grants it AND the identity's current rights do, read
//     anew on every request (a removed user, a disabled or deleted robot
//     is refused at once, whatever its token says).
//
// auth imports storage (the robots' records) and the standard library and
// x/crypto, jwt; never registry, pack, attest, mirror, audit or cmd.
package auth
