package attest_test

import (
	"net/http"
	"testing"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
)

// TestIndexingWorkOutlivesTheProcess: pushes, signatures, a key and a
// deletion arrive while the indexing worker does not run (stuck, or the
// process dies before it got to them), with a batch of one. Nothing of that
// work is dropped or lost: a new process over the same stores indexes all
// of it, in order, so the deleted signature does not count and the other
// one does. With the old in-memory queue the work died with the process
// (and a full queue dropped jobs after 5s).
func TestIndexingWorkOutlivesTheProcess(t *testing.T) {
	blobs, meta, _ := teststores.Open(t)
	cfg := attest.Config{QueueSize: 1}
	first := envOn(t, blobs, meta, cfg, false)
	a := newSigner(t, "ecdsa-p256")
	first.addKey(a)
	var sigs [2]string
	for i, repo := range []string{"durable/one", "durable/two"} {
		d := first.pushPack(repo, "1.0.0")
		p := simplePayload(repo, d)
		sigs[i] = first.signTag(repo, d, first.sigLayer(repo, p, a.sign(p))).String()
	}
	req, _ := http.NewRequest("DELETE", first.oci.URL+"/v2/durable/one/manifests/"+sigs[0], nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %v %v", err, resp.Status)
	}
	resp.Body.Close()

	second := envOn(t, blobs, meta, cfg, true)
	if rep := second.report("durable/one", "1.0.0"); rep.Verification != attest.Unsigned || len(rep.Signatures) != 0 {
		t.Fatalf("deleted signature: %s %+v", rep.Verification, rep.Signatures)
	}
	if rep := second.report("durable/two", "1.0.0"); rep.Verification != attest.Verified {
		t.Fatalf("signature pushed while no worker ran: %s %+v", rep.Verification, rep.Signatures)
	}
}

// TestPullIndexedSignatureAndTheBacklog: signature manifests pulled before
// the worker got to them are indexed by the pull (cosign verify right
// after cosign sign), and the worker, draining the outbox later (here: a
// new process over the same stores), must neither duplicate those records
// nor let them outlive a deletion that came after the pull.
func TestPullIndexedSignatureAndTheBacklog(t *testing.T) {
	blobs, meta, _ := teststores.Open(t)
	cfg := attest.Config{Policies: []attest.Policy{{Repositories: []string{"**"}, RequireSignature: true}}}
	first := envOn(t, blobs, meta, cfg, false)
	k := newSigner(t, "ecdsa-p256")
	first.addKey(k)
	const repo = "pulled/app"
	var sigs [2]digest.Digest
	for i, v := range []string{"1.0.0", "2.0.0"} {
		d := first.pushPack(repo, v)
		p := simplePayload(repo, d)
		sigs[i] = first.signTag(repo, d, first.sigLayer(repo, p, k.sign(p)))
		if code, body := first.pull(repo, attest.SchemaTag(d, attest.KindSignature)); code != http.StatusOK {
			t.Fatalf("the .sig of %s before indexing: %d %s", v, code, body)
		}
		if code, body := first.pull(repo, v); code != http.StatusOK {
			t.Fatalf("%s after its .sig was pulled: %d %s", v, code, body)
		}
	}
	if code, body := first.send("DELETE", repo, sigs[0].String()); code != http.StatusAccepted {
		t.Fatalf("DELETE of the first signature: %d %s", code, body)
	}

	second := envOn(t, blobs, meta, cfg, true)
	if rep := second.report(repo, "1.0.0"); rep.Verification != attest.Unsigned || len(rep.Signatures) != 0 {
		t.Fatalf("signature deleted after the pull indexed it: %s %+v", rep.Verification, rep.Signatures)
	}
	if code, _ := second.pull(repo, "1.0.0"); code != http.StatusForbidden {
		t.Fatalf("the version whose signature was deleted is served: %d", code)
	}
	rep := second.report(repo, "2.0.0")
	if rep.Verification != attest.Verified || len(rep.Signatures) != 1 {
		t.Fatalf("signature indexed by the pull, then by the worker: %s %+v", rep.Verification, rep.Signatures)
	}
	if code, body := second.pull(repo, "2.0.0"); code != http.StatusOK {
		t.Fatalf("the signed version: %d %s", code, body)
	}
}
