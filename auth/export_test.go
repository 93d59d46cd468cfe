package auth

import "github.com/golang-jwt/jwt/v5"

// SignClaimsForTest signs arbitrary claims with s's key and algorithm.
func SignClaimsForTest(s *Signer, c jwt.MapClaims) (string, error) {
	return jwt.NewWithClaims(s.method, c).SignedString(s.key)
}
