package attest_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/digest"
)

// A key is trusted for what it was added for: signatures of versions
// (the default, and what every key of earlier releases meant) or offline
// bundles. One trust never stands in for the other.
func TestKeyUsage(t *testing.T) {
	e := newEnv(t, attest.Config{})
	sigKey, bundleKey, both := newSigner(t, "ecdsa-p256"), newSigner(t, "ecdsa-p384"), newSigner(t, "rsa-2048")
	add := func(s *signer, usage []string, want int) map[string]any {
		t.Helper()
		body := map[string]any{"name": s.name + "-" + s.id[:8], "pem": s.pubPEM}
		if usage != nil {
			body["usage"] = usage
		}
		return e.call("POST", "/api/v1/keys", body, want)
	}
	if got := add(sigKey, nil, http.StatusCreated)["usage"]; !slices.Equal(anyStrings(got), []string{"signatures"}) {
		t.Fatalf("a key given no usage: %v", got)
	}
	if got := add(bundleKey, []string{"bundles"}, http.StatusCreated)["usage"]; !slices.Equal(anyStrings(got), []string{"bundles"}) {
		t.Fatalf("a bundle key: %v", got)
	}
	add(both, []string{"signatures", "bundles"}, http.StatusCreated)
	other := newSigner(t, "ed25519")
	for _, bad := range [][]string{{"everything"}, {"bundles", "bundles"}, {""}} {
		if out := add(other, bad, http.StatusBadRequest); out["error"].(map[string]any)["code"] != "INVALID" {
			t.Errorf("usage %q: %v", bad, out)
		}
	}

	// Signatures of versions: the signatures key and the key trusted for
	// both verify; a bundle key's signature is by no known key.
	for _, c := range []struct {
		s    *signer
		want string
	}{{sigKey, "verified"}, {both, "verified"}, {bundleKey, "unverifiable"}} {
		repo := "usage/" + c.s.name
		d := e.pushPack(repo, "1.0.0")
		p := simplePayload(repo, d)
		e.signTag(repo, d, e.sigLayer(repo, p, c.s.sign(p)))
		rep := e.report(repo, "1.0.0")
		if len(rep.Signatures) != 1 || rep.Signatures[0].Status != c.want {
			t.Errorf("signed by %s: %v, want %s", c.s.name, statuses(rep), c.want)
		}
	}

	// Bundles: only a key trusted for bundles vouches for one.
	d := digest.FromBytes(digest.SHA256, []byte("a bundle manifest"))
	p := simplePayload("bundle", d)
	ctx := context.Background()
	for _, c := range []struct {
		s  *signer
		ok bool
	}{{bundleKey, true}, {both, true}, {sigKey, false}, {other, false}} {
		k, err := e.svc.VerifyBundleSignature(ctx, d, p, c.s.sign(p))
		switch {
		case c.ok && (err != nil || k.ID != c.s.id):
			t.Errorf("bundle signed by %s: %v %v", c.s.name, k, err)
		case !c.ok && !errors.Is(err, attest.ErrUnverified):
			t.Errorf("bundle signed by %s (not trusted for bundles): %v, want ErrUnverified", c.s.name, err)
		}
	}
	other2 := digest.FromBytes(digest.SHA256, []byte("another manifest"))
	if _, err := e.svc.VerifyBundleSignature(ctx, other2, p, bundleKey.sign(p)); !errors.Is(err, attest.ErrUnverified) {
		t.Errorf("a payload about another manifest: %v", err)
	}
	if _, err := e.svc.VerifyBundleSignature(ctx, d, []byte(`{"critical":{}}`), bundleKey.sign(p)); !errors.Is(err, attest.ErrInvalid) {
		t.Errorf("a malformed payload: %v", err)
	}
	if _, err := e.svc.VerifyBundleSignature(ctx, d, p, bundleKey.sign([]byte("other bytes"))); !errors.Is(err, attest.ErrUnverified) {
		t.Errorf("a signature over other bytes: %v", err)
	}
	// A revoked bundle key vouches for nothing any more.
	e.call("POST", "/api/v1/keys/"+bundleKey.id+"/revoke", nil, http.StatusOK)
	if _, err := e.svc.VerifyBundleSignature(ctx, d, p, bundleKey.sign(p)); !errors.Is(err, attest.ErrUnverified) {
		t.Errorf("a revoked bundle key: %v", err)
	}
}

func anyStrings(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
