package mirror_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/mirror"
)

// BenchmarkMirror200 times mirroring 200 pack versions, each with a
// cosign signature (tag schema), from one packreg to another over
// loopback HTTP, and regctl doing the same copy (image copy --referrers
// --digest-tags, one process per version, as many at once as the engine's
// concurrency) in the same run. Each iteration copies into an empty
// target. Figures: mirror-s and regctl-s per iteration, and their ratio.
//
//	go test ./mirror -run '^$' -bench Mirror200 -benchtime 3x
func BenchmarkMirror200(b *testing.B) {
	const packs, versions, conc = 20, 10, 8
	a := newTestReg(b)
	var jobs []mirror.Job
	for p := range packs {
		repo := fmt.Sprintf("bench/pack%02d", p)
		for v := range versions {
			version := fmt.Sprintf("1.%d.0", v)
			d := a.pack(repo, version, []byte(strings.Repeat(fmt.Sprintf("rule %s:%s\n", repo, version), 64)))
			a.cosignSig(repo, d)
			jobs = append(jobs, mirror.Job{SrcRepo: repo, DstRepo: repo, Ref: version})
		}
	}
	regctl := regctlPath()
	var mirrorTime, regctlTime time.Duration
	for b.Loop() {
		b.StopTimer()
		dst := newPackReg(b, mutable)
		b.StartTimer()
		start := time.Now()
		eng := mirror.NewEngine(a.local(), dst.remote(), mirror.EngineOptions{Concurrency: conc})
		for _, r := range eng.Run(context.Background(), jobs, nil) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		mirrorTime += time.Since(start)
		if st := eng.Counts.Snapshot(); st.ManifestsCopied != 2*int64(len(jobs)) {
			b.Fatalf("copied %+v", st)
		}
		if regctl == "" {
			continue
		}
		b.StopTimer()
		dst2 := newPackReg(b, mutable)
		home := b.TempDir()
		for _, u := range []string{a.Srv.URL, dst2.Srv.URL} {
			runRegctl(b, regctl, home, "registry", "set", "--tls", "disabled", hostOf(u))
		}
		b.StartTimer()
		start = time.Now()
		var wg sync.WaitGroup
		slots := make(chan struct{}, conc)
		for _, j := range jobs {
			wg.Add(1)
			slots <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				runRegctl(b, regctl, home, "image", "copy", "--referrers", "--digest-tags",
					hostOf(a.Srv.URL)+"/"+j.SrcRepo+":"+j.Ref, hostOf(dst2.Srv.URL)+"/"+j.DstRepo+":"+j.Ref)
			}()
		}
		wg.Wait()
		regctlTime += time.Since(start)
		b.StopTimer()
		sig := dst2.resolve(jobs[0].DstRepo, "sha256-"+a.resolve(jobs[0].SrcRepo, jobs[0].Ref).Hex()+".sig")
		if sig == "" {
			b.Fatal("regctl did not copy the signature: the comparison would be unfair")
		}
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(mirrorTime.Seconds()/n, "mirror-s")
	if regctl != "" {
		b.ReportMetric(regctlTime.Seconds()/n, "regctl-s")
		b.ReportMetric(regctlTime.Seconds()/mirrorTime.Seconds(), "regctl/mirror")
	} else {
		b.Log("regctl not installed ($(go env GOPATH)/bin): mirror figure only")
	}
}

// regctlPath finds regctl on PATH or in $(go env GOPATH)/bin.
func regctlPath() string {
	if p, err := exec.LookPath("regctl"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return ""
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "bin", "regctl")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

func runRegctl(b *testing.B, bin, home string, args ...string) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Errorf("regctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func hostOf(u string) string {
	p, _ := url.Parse(u)
	return p.Host
}
