package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// complianceSummary is the part of GET /api/v1/compliance/summary read here.
type complianceSummary struct {
	GeneratedAt  *string `json:"generatedAt"`
	Versions     int     `json:"versions"`
	Compliant    int     `json:"compliant"`
	Failing      int     `json:"failing"`
	Attested     int     `json:"attested"`
	Verification struct {
		Verified, Unsigned, Untrusted, Invalid int
	} `json:"verification"`
	AttestationCoverage map[string]int `json:"attestationCoverage"`
	Lifecycle           struct {
		Active, Deprecated, Archived int
	} `json:"lifecycle"`
	Mirrors []json.RawMessage `json:"mirrors"`
}

type complianceItem struct {
	Name, Version, Digest, Lifecycle, Verification string
	Attested                                       bool
	Attestations                                   []string
	Compliant                                      bool
	Findings                                       []struct{ Rule, Status, Reason string }
}

type compliancePage struct {
	Items []complianceItem `json:"items"`
	Next  string           `json:"next"`
}

// TestComplianceSeedItem3 is the seed's item 3 with the real cosign:
// publish a pack, `cosign sign` and `cosign attest` it, and the compliance
// summary counts it attested and verified, the packs endpoint lists it
// compliant with its predicate type; revoking its key turns it failing
// again, and `packreg compliance` exits 1 while anything fails.
func TestComplianceSeedItem3(t *testing.T) {
	cosign := needTool(t, "cosign")
	oras := needTool(t, "oras")
	const slsa = "https://slsa.dev/provenance/v1"
	cfg := t.TempDir() + "/packreg.yaml"
	os.WriteFile(cfg, []byte(`compliance:
  rules:
    - name: signed with provenance
      repositories: ["seed/*"]
      require_signature: true
      required_attestations: ["`+slsa+`"]
`), 0o600)
	s := startServer(t, "--config", cfg)
	s.dumpLogOnFailure()
	a := &attestRun{t: t, s: s, c: newClient(t, s.URL), cosign: cosign, oras: oras,
		tl: newTool(t, "COSIGN_PASSWORD=", "COSIGN_YES=true", "TUF_ROOT="+t.TempDir(), "PACKREG_URL="+s.URL)}
	tl := a.tl
	tl.run(cosign, "generate-key-pair")
	tl.run(packregBin, "keys", "add", "--name", "release", "cosign.pub")
	key := keyID(t, tl.path("cosign.pub"))
	tl.write("provenance.json", []byte(`{"buildDefinition":{"buildType":"https://packreg.dev/conformance"},"runDetails":{"builder":{"id":"conformance"}}}`))

	ref, d := a.pushPack(t, "seed/app", "1.0.0")
	a.pushPack(t, "seed/app", "2.0.0") // never signed: failing throughout

	summary := func() complianceSummary {
		var sum complianceSummary
		a.c.apiJSON("GET", "/api/v1/compliance/summary", nil, nil, http.StatusOK, &sum)
		return sum
	}
	awaitSummary := func(what string, ok func(complianceSummary) bool) complianceSummary {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			sum := summary()
			if ok(sum) {
				return sum
			}
			if time.Now().After(deadline) {
				t.Fatalf("summary never showed %s: %+v", what, sum)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	awaitSummary("both versions failing", func(s complianceSummary) bool { return s.Versions == 2 && s.Failing == 2 })
	tl.runCode(1, packregBin, "compliance")

	tl.run(cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "-y", ref)
	tl.run(cosign, "attest", "--key", "cosign.key", "--type", slsa, "--predicate", "provenance.json", "--tlog-upload=false", "-y", ref)
	sum := awaitSummary("1.0.0 attested, verified and compliant", func(s complianceSummary) bool {
		return s.Attested == 1 && s.Verification.Verified == 1 && s.Compliant == 1
	})
	if sum.Versions != 2 || sum.Failing != 1 || sum.Verification.Unsigned != 1 || sum.AttestationCoverage[slsa] != 1 ||
		sum.Lifecycle.Active != 2 || sum.GeneratedAt == nil || sum.Mirrors == nil {
		t.Fatalf("summary: %+v", sum)
	}

	var page compliancePage
	a.c.apiJSON("GET", "/api/v1/compliance/packs?status=compliant", nil, nil, http.StatusOK, &page)
	if len(page.Items) != 1 {
		t.Fatalf("compliant: %+v", page)
	}
	it := page.Items[0]
	if it.Name != "seed/app" || it.Version != "1.0.0" || it.Digest != d || !it.Attested || it.Verification != "verified" ||
		len(it.Attestations) != 1 || it.Attestations[0] != slsa || len(it.Findings) != 1 || it.Findings[0].Status != "pass" {
		t.Fatalf("compliant item: %+v", it)
	}
	a.c.apiJSON("GET", "/api/v1/compliance/packs?status=failing", nil, nil, http.StatusOK, &page)
	if len(page.Items) != 1 || page.Items[0].Version != "2.0.0" || !strings.Contains(page.Items[0].Findings[0].Reason, "no verified attestation of "+slsa) {
		t.Fatalf("failing: %+v", page)
	}
	out := tl.runCode(1, packregBin, "compliance", "--csv")
	if lines := strings.Split(strings.TrimSpace(out.Stdout), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "seed/app,2.0.0,") {
		t.Fatalf("packreg compliance --csv:\n%s", out.Stdout)
	}

	// What a person sees in Chromium: the overview's numbers are the
	// API's, the pack page says 1.0.0 is compliant, and back works; with
	// JavaScript on and off alike.
	for _, js := range []bool{true, false} {
		b := newBrowser(t, js)
		b.run("overview", chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#count-versions")))
		checkOverview(t, b, summary())
		b.run("to the pack page", chromedp.Click(chromedp.CSS(`#listing a[href="/ui/packs/seed/app"]`)),
			chromedp.WaitVisible(chromedp.CSS("#pack-name")))
		if got := b.text("#pack-name"); got != "seed/app" {
			t.Fatalf("pack page of %q", got)
		}
		if v := b.text(`.verdict[data-version="1.0.0"]`); v != "compliant" {
			t.Fatalf("pack page: 1.0.0 is %q, want compliant (js %v)", v, js)
		}
		if v := b.text(`.verdict[data-version="2.0.0"]`); v != "failing" {
			t.Fatalf("pack page: 2.0.0 is %q, want failing (js %v)", v, js)
		}
		if js {
			b.screenshot("dashboard-pack")
		}
		b.run("back", chromedp.NavigateBack(), chromedp.WaitVisible(chromedp.CSS("#count-versions")))
		if js {
			b.screenshot("dashboard-overview")
			// On a phone's width the page reflows: nothing wider than the
			// screen but the tables, which scroll inside themselves.
			b.run("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Reload(),
				chromedp.WaitVisible(chromedp.CSS("#count-versions")))
			ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
			wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
			cancel()
			if err != nil || wide {
				t.Errorf("overview at 390 px: wider than the screen (%v, %v)", wide, err)
			}
			b.screenshot("dashboard-phone")
		}
	}

	// Revoking the key withdraws what it signed: the worker evaluates
	// every version again on the key's event.
	tl.run(packregBin, "keys", "revoke", key)
	awaitSummary("1.0.0 failing after its key was revoked", func(s complianceSummary) bool {
		return s.Compliant == 0 && s.Failing == 2 && s.Verification.Verified == 0
	})
	b := newBrowser(t, true)
	b.run("pack page after the revocation", chromedp.Navigate(s.URL+"/ui/packs/seed/app"), chromedp.WaitVisible(chromedp.CSS("#pack-name")))
	if v := b.text(`.verdict[data-version="1.0.0"]`); v != "failing" {
		t.Fatalf("pack page after the key was revoked: 1.0.0 is %q, want failing", v)
	}
}

// checkOverview compares the overview's figures with the API's summary.
func checkOverview(t *testing.T, b *browser, sum complianceSummary) {
	t.Helper()
	for sel, want := range map[string]int{
		"#count-versions": sum.Versions, "#count-compliant": sum.Compliant, "#count-failing": sum.Failing,
		"#count-attested": sum.Attested, "#count-verified": sum.Verification.Verified, "#count-unsigned": sum.Verification.Unsigned,
		"#count-untrusted": sum.Verification.Untrusted, "#count-invalid": sum.Verification.Invalid,
		"#count-active": sum.Lifecycle.Active, "#count-deprecated": sum.Lifecycle.Deprecated, "#count-archived": sum.Lifecycle.Archived,
	} {
		if got := b.number(sel); got != want {
			t.Errorf("overview %s = %d, the API says %d", sel, got, want)
		}
	}
}

// runCode runs name args and fails the test unless it exits with code.
func (tl *tool) runCode(code int, name string, args ...string) cmdResult {
	tl.t.Helper()
	res, err := tl.try(nil, name, args...)
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		tl.t.Fatal(err)
	}
	if got != code {
		tl.t.Fatalf("%s %s: exit %d, want %d\n%s%s", name, strings.Join(args, " "), got, code, res.Stdout, res.Stderr)
	}
	return res
}
