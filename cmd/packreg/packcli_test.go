package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packreg/packreg/pack"
)

// packServer is serve's wiring (wire) on an httptest server; it returns
// the URL.
func packServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(edgeApp(t, nil))
	t.Cleanup(srv.Close)
	return srv.URL
}

// cliRun runs packreg with args and returns its exit status and output.
func cliRun(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestPackCLI(t *testing.T) {
	url := packServer(t)
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	os.WriteFile(rules, []byte("rules: []\n"), 0o644)
	policy := filepath.Join(dir, "policy.rego")
	os.WriteFile(policy, []byte("package p\n"), 0o644)
	must := func(want int, args ...string) string {
		t.Helper()
		code, out, errOut := cliRun(append(args, "--server", url)...)
		if code != want {
			t.Fatalf("packreg %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
		}
		// Tables align with runs of spaces: compare words.
		return strings.Join(strings.Fields(out+errOut), " ")
	}

	out := must(0, "pack", "publish", "acme/rules:1.2.0", rules, policy+":application/vnd.opa.policy.layer.v1+rego",
		"--description", "Acme rules", "--label", "team=sec", "--label", "tier=1")
	if !strings.HasPrefix(out, "published acme/rules:1.2.0 sha256:") || !strings.Contains(out, "2 files") {
		t.Fatalf("publish printed %q", out)
	}
	if out := must(0, "pack", "publish", "acme/rules:1.2.0", rules, policy+":application/vnd.opa.policy.layer.v1+rego",
		"--description", "Acme rules", "--label", "team=sec", "--label", "tier=1"); !strings.Contains(out, "already published") {
		t.Fatalf("republish printed %q", out)
	}
	must(0, "pack", "publish", "acme/rules:2.0.0", rules)
	if out := must(1, "pack", "publish", "acme/rules:2.0.0", policy); !strings.Contains(out, "VERSION_EXISTS") {
		t.Fatalf("duplicate version: %q", out)
	}
	if out := must(1, "pack", "publish", "acme/rules:v3", rules); !strings.Contains(out, "VERSION_INVALID") {
		t.Fatalf("bad version: %q", out)
	}
	must(2, "pack", "publish", "acme/rules", rules)
	must(2, "pack", "bogus")

	out = must(0, "pack", "list")
	if !strings.Contains(out, "NAME") || !strings.Contains(out, "acme/rules 1.2.0") || !strings.Contains(out, "2.0.0") {
		t.Fatalf("list:\n%s", out)
	}
	var l pack.VersionList
	if err := json.Unmarshal([]byte(must(0, "pack", "list", "--json", "--label", "team=sec")), &l); err != nil || len(l.Items) != 1 || l.Items[0].Version != "1.2.0" {
		t.Fatalf("list --json --label: %+v %v", l, err)
	}
	var paged pack.VersionList
	json.Unmarshal([]byte(must(0, "pack", "list", "--json", "--limit", "1", "--all")), &paged)
	if len(paged.Items) != 2 || paged.Next != "" {
		t.Fatalf("list --all in pages of 1: %+v", paged)
	}

	must(0, "pack", "deprecate", "acme/rules:1.2.0", "--reason", "use 2.0.0")
	if out := must(0, "pack", "list"); strings.Contains(out, "1.2.0") {
		t.Fatalf("deprecated version in the default listing:\n%s", out)
	}
	if out := must(0, "pack", "list", "--status", "deprecated"); !strings.Contains(out, "1.2.0") {
		t.Fatalf("deprecated listing:\n%s", out)
	}
	out = must(0, "pack", "show", "acme/rules:1.2.0")
	for _, want := range []string{"deprecated (use 2.0.0)", "rules.yaml", "application/vnd.opa.policy.layer.v1+rego", "team=sec, tier=1", "active deprecated"} {
		if !strings.Contains(out, want) {
			t.Fatalf("show lacks %q:\n%s", want, out)
		}
	}
	out = must(0, "pack", "archive", "acme/rules", "--reason", "eol")
	if !strings.Contains(out, "acme/rules:1.2.0 archived: eol") || !strings.Contains(out, "acme/rules:2.0.0 archived: eol") {
		t.Fatalf("archive the pack:\n%s", out)
	}
	if out := must(1, "pack", "restore", "acme/rules:2.0.0"); !strings.Contains(out, "TRANSITION_INVALID") {
		t.Fatalf("restore without force: %q", out)
	}
	must(0, "pack", "restore", "acme/rules:2.0.0", "--force")
	if out := must(0, "pack", "show", "acme/rules"); !strings.Contains(out, "1.2.0 archived") || !strings.Contains(out, "2.0.0 active") {
		t.Fatalf("show pack:\n%s", out)
	}

	out = must(0, "audit", "list", "--action", "pack.lifecycle")
	if strings.Count(out, "pack.lifecycle") != 4 || !strings.Contains(out, "to=active") {
		t.Fatalf("audit list:\n%s", out)
	}
	if out := must(0, "audit", "verify"); !strings.HasPrefix(out, "audit trail intact: ") {
		t.Fatalf("audit verify: %q", out)
	}
	must(2, "audit", "verify", "extra")
	if code, _, errOut := cliRun("audit", "verify", "--server", "http://127.0.0.1:1"); code != 3 || errOut == "" {
		t.Fatalf("unreachable server: exit %d %q", code, errOut)
	}
}

func TestPacksConfig(t *testing.T) {
	c, err := parse(t, "packs:\n  policy:\n    max_pack_size: 100\n    allowed_layer_media_types: [text/*]\n")
	if err != nil {
		t.Fatal(err)
	}
	p := c.Packs.Policy.policy()
	if p.MaxPackSize != 100 || !p.ImmutableVersions || !p.RequireSemver || p.AllowedLayerMediaTypes[0] != "text/*" {
		t.Fatalf("policy %+v: the keys set and the defaults of the others", p)
	}
	for file, want := range map[string]string{
		"packs:\n  policy:\n    immutable: false\n":                 "immutable",
		"packs:\n  polcy: {}\n":                                     "polcy",
		"packs:\n  policy:\n    max_pack_size: -1\n":                "max pack size",
		"packs:\n  policy:\n    allowed_layer_media_types: ['*']\n": "allowed layer media type",
		"packs:\n  policy:\n    allowed_layer_media_types: [a*b]\n": "allowed layer media type",
		"packs:\n  policy:\n    require_semver: sometimes\n":        "sometimes",
	} {
		if _, err := parse(t, file); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %q: %v, want an error about %q", file, err, want)
		}
	}
}

// The publish cap and spool come from the config: DATA/spool, and
// packs.max_publish_size even without a pack size policy.
func TestPublishBoundsWired(t *testing.T) {
	var data string
	h := edgeApp(t, func(c *Config) {
		data = c.Data
		c.Packs.MaxPublishSize = 1 << 20
		c.Packs.Policy.MaxPackSize = 0
	})
	if fi, err := os.Stat(filepath.Join(data, "spool")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("DATA/spool: %v %v", fi, err)
	}
	form, formType := publishForm("big/pack", "1.0.0", bytes.Repeat([]byte{'x'}, 2<<20))
	want(t, send(h, "POST", "/api/v1/packs", form, "Content-Type", formType), 413, "TOO_LARGE", "2 MiB publish, 1 MiB cap")
}
