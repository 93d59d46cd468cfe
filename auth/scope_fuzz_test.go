package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzTokenScope: a token request's scope, as the token endpoint reads it
// (ParseScope, Grant, Issue), yields a token that grants no more than the
// caller's rights on the scope's repository, and the admin API only to an
// admin; a parsed scope reads back from its String form unchanged; and a
// byte changed anywhere in the issued token either makes it refused or
// changes nothing it grants (base64's spare bits, say).
func FuzzTokenScope(f *testing.F) {
	f.Add("repository:acme/rules:pull,push", uint8(1), uint16(0), byte(0))
	f.Add("repository:acme/x:y:*", uint8(2), uint16(40), byte('A'))
	f.Add("registry:admin:*", uint8(0), uint16(300), byte('.'))
	f.Add("registry:catalog:*", uint8(3), uint16(0), byte(0))
	rules, err := compileRules([]Rule{
		{Repositories: []string{"acme/**"}, Users: []string{"alice"}, Actions: []string{"pull", "push"}},
		{Repositories: []string{"acme/*"}, Users: []string{"*"}, Actions: []string{"pull", "delete"}},
	}, true)
	if err != nil {
		f.Fatal(err)
	}
	a := &Authority{admins: []string{"root"}, rules: rules, anon: Pull, now: time.Now}
	ids := []Identity{{Name: "root", Kind: User}, {Name: "alice", Kind: User}, {Name: "bob", Kind: User}, AnonymousIdentity()}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	s, err := NewSigner(key, "packreg", "registry", time.Hour, func() time.Time { return now })
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, scope string, who uint8, pos uint16, b byte) {
		sc, ok := ParseScope(scope)
		if !ok {
			return
		}
		if again, ok := ParseScope(sc.String()); !ok || !reflect.DeepEqual(again, sc) {
			t.Fatalf("scope %q reads as %+v, its String %q as %+v", scope, sc, sc.String(), again)
		}
		if strings.Contains(sc.Type, ":") || sc.Name == "" || strings.ContainsFunc(strings.Join(sc.Actions, ""), func(r rune) bool { return r == ',' || r == ':' }) {
			t.Fatalf("scope %q reads as %+v", scope, sc)
		}
		id := ids[int(who)%len(ids)]
		granted := a.Grant(id, []Scope{sc})
		for _, g := range granted {
			switch {
			case g.Type == "repository":
				got, err := ParseActions(g.Actions)
				if err != nil || g.Name != sc.Name || !a.Rights(id, g.Name).Has(got) {
					t.Fatalf("%s asking %q is granted %+v (%v); rights there: %v", id.Name, scope, g, err, a.Rights(id, g.Name))
				}
			case g.Type == "registry" && g.Name == "admin" && !a.IsAdmin(id):
				t.Fatalf("%s asking %q is granted the admin API", id.Name, scope)
			}
		}
		tok, err := s.Issue(id.Name, granted, now)
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Verify(tok)
		if err != nil || !reflect.DeepEqual(c.Access, granted) && len(granted) > 0 {
			t.Fatalf("issued %q for %+v, verified as %+v: %v", tok, granted, c, err)
		}
		bad := []byte(tok)
		bad[int(pos)%len(bad)] = b
		if c2, err := s.Verify(string(bad)); err == nil && (!reflect.DeepEqual(c2.Access, c.Access) || c2.Subject != c.Subject) {
			t.Fatalf("token %q changed to %q verifies, granting %+v to %s instead of %+v to %s", tok, bad, c2.Access, c2.Subject, c.Access, c.Subject)
		}
	})
}

// TestGrantValidNamesOnly: a token asked for a name no repository can
// have grants nothing there. Invalid UTF-8 in such a name travels in the
// token's JSON as U+FFFD, so the token granted on another name than the
// one the rights were checked on.
func TestGrantValidNamesOnly(t *testing.T) {
	a := &Authority{anon: Pull, now: time.Now}
	anon := AnonymousIdentity()
	if got := a.Grant(anon, []Scope{{Type: "repository", Name: "acme/rules", Actions: []string{"pull"}}}); len(got) != 1 {
		t.Fatalf("pull of acme/rules: granted %+v", got)
	}
	for _, name := range []string{"acme/\x8b", "ACME/rules", "acme//rules", "../x"} {
		if got := a.Grant(anon, []Scope{{Type: "repository", Name: name, Actions: []string{"pull"}}}); len(got) != 0 {
			t.Errorf("pull of %q: granted %+v", name, got)
		}
	}
}
