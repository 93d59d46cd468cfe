package conformance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// auditEntry is one record of `packreg audit list --json`.
type auditEntry struct {
	ID      int64             `json:"id"`
	Actor   string            `json:"actor"`
	Action  string            `json:"action"`
	Target  string            `json:"target"`
	Digest  string            `json:"digest"`
	Details map[string]string `json:"details"`
}

// auditTrail lists the whole trail with the CLI.
func auditTrail(t *testing.T, tl *tool, server string) []auditEntry {
	t.Helper()
	out := packregCLI(t, tl, server, 0, "audit", "list", "--all", "--json")
	var page struct {
		Items []auditEntry `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatalf("audit list --json: %v\n%s", err, clip(out))
	}
	return page.Items
}

// startOnPostgres starts a server (with args) on a PostgreSQL database
// of its own, which it returns for the test to lock tables of.
func startOnPostgres(t *testing.T, args ...string) (*server, string) {
	t.Helper()
	database := isolatedPostgres(t, needEnv(t, "PACKREG_TEST_POSTGRES"))
	s := startServer(t, append(args, "--database", database)...)
	s.dumpLogOnFailure()
	return s, database
}

// hasRecord reports whether trail holds action on target with digest d.
func hasRecord(trail []auditEntry, action, target, d string) bool {
	for _, r := range trail {
		if r.Action == action && r.Target == target && r.Digest == d {
			return true
		}
	}
	return false
}

// TestKill9BeforeAuditRecord kills the server after a manifest push is
// committed and before its audit records are written: a lock on the chain
// head (PostgreSQL) holds the server between the two, and the test kills
// it as soon as the pushed tag is served. After the restart the trail holds
// the push and the tag move, once each, and verifies.
func TestKill9BeforeAuditRecord(t *testing.T) {
	s, database := startOnPostgres(t)
	tl := newTool(t)
	c := newClient(t, s.URL)
	const repo = "audit/crash"
	before := makeImage(t, "pushed before the crash")
	c.pushImage(repo, "v1", before)
	img := makeImage(t, "pushed as the server dies")
	c.pushBlob(repo, img.Config)
	c.pushBlob(repo, img.Layer)

	release := lockPostgresTables(t, database, "audit_head")
	put := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("PUT", s.URL+"/v2/"+repo+"/manifests/v2", strings.NewReader(string(img.Manifest)))
		req.Header.Set("Content-Type", mtOCIManifest)
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered %d", resp.StatusCode)
		}
		put <- err
	}()
	waitFor(t, 30*time.Second, "the pushed tag to be served", func() bool {
		_, _, status := c.getManifest(repo, "v2")
		return status == http.StatusOK
	})
	s.kill()
	release()
	<-put

	s = s.restart()
	if out := packregCLI(t, tl, s.URL, 0, "audit", "verify"); !strings.Contains(out, "intact") {
		t.Fatalf("audit verify after the restart: %s", out)
	}
	trail := auditTrail(t, tl, s.URL)
	for _, want := range []struct{ action, target string }{
		{"manifest.push", repo}, {"tag.move", repo + ":v2"},
	} {
		n := 0
		for _, r := range trail {
			if r.Action == want.action && r.Target == want.target && r.Digest == img.Digest {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d %s records of %s %s after the restart, want 1", n, want.action, want.target, img.Digest)
		}
	}
	if !hasRecord(trail, "tag.move", repo+":v1", before.Digest) {
		t.Errorf("the trail lost the push before the crash")
	}
}

// TestKill9IndexingBacklog stalls signature indexing (a lock on the attest
// records, PostgreSQL) with a queue of one (attest.queue_size: 1), deletes
// a verified signature and signs another version while it is stalled,
// then kills the server. Nothing of that work may be dropped or lost:
// after the restart the deleted signature no longer counts as verified and
// the new one does, without anyone asking for a re-check.
func TestKill9IndexingBacklog(t *testing.T) {
	cosign := needTool(t, "cosign")
	oras := needTool(t, "oras")
	s, database := startOnPostgres(t, "--config", writeConfig(t, "attest:\n  queue_size: 1\n"))
	a := &attestRun{t: t, s: s, c: newClient(t, s.URL), cosign: cosign, oras: oras,
		tl: newTool(t, "COSIGN_PASSWORD=", "COSIGN_YES=true", "TUF_ROOT="+t.TempDir(), "PACKREG_URL="+s.URL)}
	a.tl.run(cosign, "generate-key-pair")
	a.tl.run(packregBin, "keys", "add", "--name", "release", "cosign.pub")
	ref1, d1 := a.pushPack(t, "durable/one", "1.0.0")
	a.tl.run(cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "-y", ref1)
	a.await(t, "durable/one", "1.0.0", "verified", 1, 0)
	ref2, _ := a.pushPack(t, "durable/two", "1.0.0")

	release := lockPostgresTables(t, database, "attest_records")
	sig := a.c.manifestDigest("durable/one", strings.Replace(d1, ":", "-", 1)+".sig")
	resp, body := a.c.do("DELETE", "/v2/durable/one/manifests/"+sig, nil, nil)
	expect(t, resp, body, http.StatusAccepted, "DELETE of the signature")
	a.tl.run(cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "-y", ref2)
	s.kill()
	release()

	s = s.restart()
	a.s, a.c = s, newClient(t, s.URL)
	a.await(t, "durable/one", "1.0.0", "unsigned", 0, 0)
	a.await(t, "durable/two", "1.0.0", "verified", 1, 0)
}

// TestConfigChangesAudited: changes of configuration are in the audit
// trail with who made them, once each: the attest policies and caps
// between starts and the remotes of the config file (by the system),
// mirrors created, changed and deleted through the API and keys added (by
// the client). Starting again with the same configuration records nothing.
func TestConfigChangesAudited(t *testing.T) {
	config := func(window, hq, caps string) string {
		return "attest:\n" + caps + "  policies:\n    - repositories: [\"secure/*\"]\n      require_signature: true\n      signing_window: " + window +
			"\nmirrors:\n  remotes:\n    - {name: hq, kind: upstream, url: \"" + hq + "\", include: [\"acme/*\"]}\n"
	}
	s := startServer(t, "--config", writeConfig(t, config("10m", "http://127.0.0.1:1", "")))
	s.dumpLogOnFailure()
	tl := newTool(t)
	c := newClient(t, s.URL)

	var eu struct{ ID string }
	if err := json.Unmarshal([]byte(packregCLI(t, tl, s.URL, 0, "mirror", "add", "--name", "eu", "--url", "http://127.0.0.1:2", "--json")), &eu); err != nil || eu.ID == "" {
		t.Fatalf("mirror add: %v %+v", err, eu)
	}
	json := http.Header{"Content-Type": {"application/json"}}
	resp, body := c.do("PUT", "/api/v1/mirrors/"+eu.ID, json, []byte(`{"name":"eu","url":"http://127.0.0.1:3","credentials":{"token":"t0ken"}}`))
	expect(t, resp, body, http.StatusOK, "PUT mirror")
	resp, body = c.do("DELETE", "/api/v1/mirrors/"+eu.ID, nil, nil)
	expect(t, resp, body, http.StatusNoContent, "DELETE mirror")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	tl.write("k.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	tl.run(packregBin, "keys", "add", "--server", s.URL, "--name", "release", "k.pub")

	// Again with the same configuration, then with a changed one, then
	// with only a cap of the signature policy raised.
	s.stop()
	s = s.restart()
	s.stop()
	s = startServerAt(t, s.Data, "--config", writeConfig(t, config("1h", "http://127.0.0.1:4", "")))
	s.stop()
	s = startServerAt(t, s.Data, "--config", writeConfig(t, config("1h", "http://127.0.0.1:4", "  max_records_per_subject: 5000\n")))

	trail := auditTrail(t, tl, s.URL)
	count := func(action, target, actorPrefix string) []auditEntry {
		var out []auditEntry
		for _, r := range trail {
			if r.Action == action && strings.HasPrefix(r.Target, target) && strings.HasPrefix(r.Actor, actorPrefix) {
				out = append(out, r)
			}
		}
		return out
	}
	for _, want := range []struct {
		action, target, actor string
		n                     int
	}{
		{"config.change", "attest.policies", "system", 3},
		{"upstream.create", "upstream:hq", "system", 1},
		{"upstream.update", "upstream:hq", "system", 1},
		{"mirror.create", "mirror:eu", "anonymous@127.0.0.1", 1},
		{"mirror.update", "mirror:eu", "anonymous@127.0.0.1", 1},
		{"mirror.delete", "mirror:eu", "anonymous@127.0.0.1", 1},
		{"key.add", "key:", "anonymous@127.0.0.1", 1},
	} {
		if got := count(want.action, want.target, want.actor); len(got) != want.n {
			t.Errorf("%d %s records of %s* by %s*, want %d", len(got), want.action, want.target, want.actor, want.n)
		}
	}
	var caps []string
	for _, r := range count("config.change", "attest.policies", "system") {
		caps = append(caps, r.Details["max_records_per_subject"])
	}
	if strings.Join(caps, " ") != "5000 1024 1024" { // newest first
		t.Errorf("attest.policies records name max_records_per_subject %q, want 5000 after 1024 twice", caps)
	}
	upd := count("mirror.update", "mirror:eu", "")
	if len(upd) == 1 && (upd[0].Details["previousUrl"] != "http://127.0.0.1:2" || upd[0].Details["credentialsChanged"] != "true" || upd[0].Details["auth"] != "bearer") {
		t.Errorf("mirror.update details: %v", upd[0].Details)
	}
	if strings.Contains(packregCLI(t, tl, s.URL, 0, "audit", "list", "--all", "--json"), "t0ken") {
		t.Error("the audit trail shows a credential")
	}
	if out := packregCLI(t, tl, s.URL, 0, "audit", "verify"); !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: %s", out)
	}
}
