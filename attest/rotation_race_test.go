package attest_test

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/packreg/packreg/attest"
)

// TestKeyRingChangedWhileVerifying: reports and pull checks run at once
// while the key ring and the trusted roots change under them (a key
// added, retired, a root added and removed, the signing key revoked) and
// the worker re-checks what the changes touch. No read fails, and once
// the signing key is revoked the version is no longer verified.
func TestKeyRingChangedWhileVerifying(t *testing.T) {
	e := newEnv(t, attest.Config{})
	old, next := newSigner(t, "ecdsa-p256"), newSigner(t, "ed25519ph")
	e.addKey(old)
	const repo = "race/rotate"
	d := e.pushPack(repo, "1.0.0")
	p := simplePayload(repo, d)
	e.signTag(repo, d, e.sigLayer(repo, p, old.sign(p)))
	if rep := e.report(repo, "1.0.0"); rep.Verification != attest.Verified {
		t.Fatalf("before the changes: %s", rep.Verification)
	}
	ctx := t.Context()
	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for !stop.Load() {
				if _, err := e.svc.Evaluate(ctx, repo, d); err != nil {
					t.Errorf("Evaluate: %v", err)
					return
				}
				if _, err := e.svc.CheckPull(ctx, repo, d, "1.0.0"); err != nil {
					t.Errorf("CheckPull: %v", err)
					return
				}
				if _, err := e.svc.TrustedRoots(ctx); err != nil {
					t.Errorf("TrustedRoots: %v", err)
					return
				}
				reads.Add(1)
			}
		})
	}
	// Each change lands while the readers read.
	settle := func() {
		for n := reads.Load(); reads.Load() < n+3 && !t.Failed(); {
			runtime.Gosched()
		}
	}
	change := func(what string, err error) {
		t.Helper()
		if err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("%s: %v", what, err)
		}
		settle()
	}
	settle()
	k, err := e.svc.AddKey(ctx, attest.KeyInput{Name: "next", PEM: next.pubPEM})
	change("add a key", err)
	_, err = e.svc.RetireKey(ctx, k.ID)
	change("retire it", err)
	_, err = e.svc.AddTrustedRoot(ctx, "ci", newSigstore(t).trustedRoot())
	change("add a root", err)
	change("remove it", e.svc.DeleteTrustedRoot(ctx, "ci"))
	_, err = e.svc.RevokeKey(ctx, old.id)
	change("revoke the signing key", err)
	stop.Store(true)
	wg.Wait()
	if rep := e.report(repo, "1.0.0"); rep.Verification != attest.Untrusted {
		t.Fatalf("after the signing key was revoked: %s, want %s", rep.Verification, attest.Untrusted)
	}
}
