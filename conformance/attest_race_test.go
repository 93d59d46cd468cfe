package conformance

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// dsseEnvelope is an in-toto statement of predicateType about subject,
// signed by key as DSSE (over the pre-authentication encoding).
func dsseEnvelope(t *testing.T, key *ecdsa.PrivateKey, subject, predicateType string, predicate map[string]string) []byte {
	t.Helper()
	const payloadType = "application/vnd.in-toto+json"
	hex := strings.TrimPrefix(subject, "sha256:")
	stmt := mustJSON(t, map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []map[string]any{{"name": "pack", "digest": map[string]string{"sha256": hex}}},
		"predicateType": predicateType,
		"predicate":     predicate,
	})
	pae := fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(stmt), stmt)
	sum := sha256.Sum256([]byte(pae))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return mustJSON(t, map[string]any{
		"payloadType": payloadType,
		"payload":     base64.StdEncoding.EncodeToString(stmt),
		"signatures":  []map[string]string{{"keyid": "", "sig": base64.StdEncoding.EncodeToString(sig)}},
	})
}

// TestConcurrentAttestationsAcrossReplicas posts attestations about one
// version at once to two replicas of one registry. Each is appended to the
// version's .att manifest by a read-modify-write of its tag; none may be
// lost. (A lock inside one process serialised the appends of that process
// only: another replica's append could overwrite one.)
func TestConcurrentAttestationsAcrossReplicas(t *testing.T) {
	a, b := startReplicas(t)
	replicas := []*client{newClient(t, a.URL), newClient(t, b.URL)}
	c := replicas[0]
	key, pemPub := ecdsaKey(t)
	c.apiJSON("POST", "/api/v1/keys", jsonHeader, mustJSON(t, map[string]string{"name": "race", "pem": pemPub}), http.StatusCreated, nil)
	const repo = "race/attest"
	subject := c.putManifest(repo, "1.0.0", mtOCIManifest,
		rawPack(c, repo, packArtifactType, "application/vnd.packreg.pack.file.v1", []byte("attested")))

	const perReplica = 8
	var wg sync.WaitGroup
	errs := make(chan string, 2*perReplica)
	for i := range 2 * perReplica {
		body := dsseEnvelope(t, key, subject, "https://packreg.dev/attestations/race/v1", map[string]string{"n": fmt.Sprint(i)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, rb := replicas[i%2].do("POST", "/api/v1/packs/"+repo+"/versions/1.0.0/attestations", jsonHeader, body)
			if resp.StatusCode != http.StatusCreated {
				errs <- fmt.Sprintf("attestation %d: %d %s", i, resp.StatusCode, clip(string(rb)))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	body, _, status := c.getManifest(repo, strings.Replace(subject, ":", "-", 1)+".att")
	if status != http.StatusOK {
		t.Fatalf("GET the .att manifest: %d", status)
	}
	var m manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 2*perReplica {
		t.Fatalf("the .att manifest holds %d attestations, %d were posted", len(m.Layers), 2*perReplica)
	}
}
