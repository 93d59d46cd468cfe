package attest

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// FuzzIdentityMatch: an identity policy matches a certificate exactly
// when every criterion it sets holds (issuer and subject, exact or by
// regular expression, and the pinned source repository), and a record's
// stored identity, read back, matches the same way.
func FuzzIdentityMatch(f *testing.F) {
	const gh = "https://token.actions.githubusercontent.com"
	const wf = "https://github.com/acme/rules/.github/workflows/release.yml@refs/tags/v1.2.0"
	f.Add(gh, "", "", `^https://github\.com/acme/.+/\.github/workflows/release\.yml@refs/tags/v.*$`, "https://github.com/acme/rules",
		gh, wf, "https://github.com/acme/rules")
	f.Add(gh, "", "", `^https://github\.com/acme/`, "", gh, "https://github.com/mallory/x?https://github.com/acme/", "")
	f.Add("", `^https://token\.actions\.githubusercontent\.com$`, wf, "", "", gh+"/", wf, "")
	f.Add(gh, "", "", "github.com/acme", "", gh, "https://github.com/mallory/github.com/acme", "")
	f.Add("", "", "", "", "", gh, wf, "")
	f.Add(gh, "(", wf, "", "", gh, wf, "")
	f.Add(gh, "", "", ".*", "x", gh, "", "")
	f.Fuzz(func(t *testing.T, issuer, issuerRe, subject, subjectRe, repoPin, certIssuer, certSAN, certRepo string) {
		id := Identity{Issuer: issuer, IssuerRegexp: issuerRe, Subject: subject, SubjectRegexp: subjectRe, SourceRepositoryURI: repoPin}
		m, err := id.Matcher()
		reOK := func(s string) bool { _, err := regexp.Compile(s); return err == nil }
		valid := (issuer != "" || issuerRe != "") && (subject != "" || subjectRe != "") && reOK(issuerRe) && reOK(subjectRe)
		if (err == nil) != valid {
			t.Fatalf("Matcher(%+v) = %v, want valid %v", id, err, valid)
		}
		if err != nil {
			return
		}
		sum := certificate.Summary{SubjectAlternativeName: certSAN,
			Extensions: certificate.Extensions{Issuer: certIssuer, SourceRepositoryURI: certRepo}}
		holds := func(exact, re, v string) bool {
			return (exact == "" || exact == v) && (re == "" || regexp.MustCompile(re).MatchString(v))
		}
		want := holds(issuer, issuerRe, certIssuer) && holds(subject, subjectRe, certSAN) && (repoPin == "" || repoPin == certRepo)
		ids := []verify.CertificateIdentity{m}
		if got := matchIdentity(ids, sum) == 0; got != want {
			t.Fatalf("%+v against %+v: matched %v, want %v", id, sum, got, want)
		}
		b, err := json.Marshal(keylessProof{Identity: sum})
		if err != nil {
			t.Fatal(err)
		}
		p, ok := decodeProof(string(b))
		if !ok || (matchIdentity(ids, p.Identity) == 0) != want {
			t.Fatalf("stored identity %s matches differently", b)
		}
	})
}
