package conformance

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Each real client's login flow against packreg with auth on: an htpasswd
// user and a robot made through the API log in, push and pull; a wrong
// password gets nothing; a pull-only user is refused on push and the
// registry is left as it was. Every tool gets its own HOME and credential
// stores (newTool), so no login leaks between cases or into the real home.

const clientsAuthConfig = `
auth:
  htpasswd: %s
  admins: [root]
  rules:
    - {repositories: ["acme/**"], users: [dev], actions: [pull, push, overwrite, delete]}
    - {repositories: ["**"], users: ["*"], actions: [pull]}
  login: {max_failures: 1000, window: 1m}
`

// clientFlow is one client's way of logging in, pushing and pulling.
type clientFlow struct {
	newTool func(t *testing.T) *tool
	// login stores (and, where the client does, checks) credentials.
	login func(tl *tool, user, pass string) (cmdResult, error)
	// loginChecks: the client's login asks the registry (crane and cosign
	// only write the credential file).
	loginChecks bool
	push        func(tl *tool, repo string) (cmdResult, error)
	// prepare, when set, puts what push needs into repo (as root).
	prepare func(repo string)
	// pull fetches what push sent to repo and checks it, failing the test
	// when fail is true; it returns whether the pull worked.
	pull func(tl *tool, repo string, fail bool) bool
	// list, when set, is the client's listing of the catalog (one
	// repository a line), with the credentials of its login.
	list func(tl *tool) (cmdResult, error)
}

// refusedRE is what a client prints when the registry refuses it.
var refusedRE = regexp.MustCompile(`(?i)denied|unauthori[sz]ed|forbidden|insufficient_scope|invalid username/password|\b40[13]\b`)

func TestClientsAuth(t *testing.T) {
	a := startAuthServerWith(t, clientsAuthConfig, "root", "dev", "reader")
	r := a.call("basic:root", "POST", "/api/v1/robots",
		[]byte(`{"name":"ci","rules":[{"repositories":["acme/**"],"actions":["pull","push"]}]}`), "Content-Type", "application/json")
	wantAnswer(t, "create robot", r, 201, "")
	var robot struct{ Secret string }
	if json.Unmarshal(r.body, &robot) != nil || robot.Secret == "" {
		t.Fatalf("robot: %s", r.body)
	}
	// robot$ci, not robot:ci: oras and helm refuse a ':' in a user name.
	ids := [][2]string{{"dev", "dev-pw"}, {"robot$ci", robot.Secret}}

	for name, flow := range map[string]func(*authServer) clientFlow{
		"crane": craneFlow, "oras": orasFlow, "skopeo": skopeoFlow,
		"regctl": regctlFlow, "helm": helmFlow, "cosign": cosignFlow,
	} {
		t.Run(name, func(t *testing.T) {
			sa := *a // the subtest's own t for the helpers
			sa.t = t
			a := &sa
			f := flow(a)
			for _, id := range ids {
				tl := f.newTool(t)
				repo := "acme/" + name + "/" + strings.ReplaceAll(id[0], "$", "-")
				if res, err := f.login(tl, id[0], id[1]); err != nil {
					t.Fatalf("%s logs in: %v\n%s%s", id[0], err, res.Stdout, res.Stderr)
				}
				if res, err := f.push(tl, repo); err != nil {
					t.Fatalf("%s pushes %s: %v\n%s%s", id[0], repo, err, clip(res.Stdout), clip(res.Stderr))
				}
				f.pull(tl, repo, true)
				// The catalog lists what the login may pull: these
				// clients send credentials only when challenged.
				if f.list != nil {
					res, err := f.list(tl)
					if err != nil || !slices.Contains(strings.Fields(res.Stdout), repo) {
						t.Fatalf("%s lists the catalog without %s: %v\n%s%s", id[0], repo, err, clip(res.Stdout), clip(res.Stderr))
					}
				}
			}

			// A wrong password: refused at login, or (crane, cosign)
			// at the first request.
			tl := f.newTool(t)
			res, err := f.login(tl, "dev", "not-the-password")
			if f.loginChecks {
				if err == nil {
					t.Fatalf("login with a wrong password worked:\n%s%s", res.Stdout, res.Stderr)
				}
				if !refusedRE.MatchString(res.Stdout + res.Stderr) {
					t.Errorf("wrong password: the client does not say it was refused:\n%s%s", res.Stdout, res.Stderr)
				}
			} else if err != nil {
				t.Fatalf("%s login only stores credentials, yet failed: %v\n%s", name, err, res.Stderr)
			}
			if f.pull(tl, "acme/"+name+"/dev", false) {
				t.Fatal("a pull with a wrong password worked")
			}

			// A pull-only user: logs in and pulls, is refused on push,
			// and the repository keeps its tags.
			tl = f.newTool(t)
			if res, err := f.login(tl, "reader", "reader-pw"); err != nil {
				t.Fatalf("reader logs in: %v\n%s%s", err, res.Stdout, res.Stderr)
			}
			f.pull(tl, "acme/"+name+"/dev", true)
			repo := "acme/" + name + "/reader"
			if f.prepare != nil {
				f.prepare(repo)
			}
			before := a.tags(repo)
			res, err = f.push(tl, repo)
			if err == nil {
				t.Fatalf("a pull-only user pushed:\n%s%s", res.Stdout, res.Stderr)
			}
			if !refusedRE.MatchString(res.Stdout + res.Stderr) {
				t.Errorf("refused push: the client does not say it was refused:\n%s", clip(res.Stdout+res.Stderr))
			}
			if after := a.tags(repo); !slices.Equal(before, after) {
				t.Errorf("refused push changed the tags of %s: %q -> %q", repo, before, after)
			}
		})
	}
}

// tags lists repo's tags as root sees them (nil for an unknown repository).
func (a *authServer) tags(repo string) []string {
	a.t.Helper()
	r := a.call("basic:root", "GET", "/v2/"+repo+"/tags/list", nil)
	var l struct{ Tags []string }
	if r.status == 200 {
		json.Unmarshal(r.body, &l)
	}
	slices.Sort(l.Tags)
	return l.Tags
}

// digest is the manifest digest of repo:ref as root sees it.
func (a *authServer) digest(repo, ref string) string {
	a.t.Helper()
	r := a.call("basic:root", "HEAD", "/v2/"+repo+"/manifests/"+ref, nil, "Accept", mtOCIManifest)
	if r.status != 200 {
		a.t.Fatalf("HEAD %s:%s: %d", repo, ref, r.status)
	}
	return r.header.Get("Docker-Content-Digest")
}

// writeLayout writes img as an OCI image layout with the tag v1.
func writeLayout(tl *tool, dir string, img *image) {
	tl.t.Helper()
	for _, b := range [][]byte{img.Manifest, img.Config, img.Layer} {
		tl.write(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(sha256Digest(b), "sha256:")), b)
	}
	tl.write(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`))
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{
		"mediaType": mtOCIManifest, "digest": img.Digest, "size": len(img.Manifest),
		"annotations": map[string]string{"org.opencontainers.image.ref.name": "v1"}}}})
	tl.write(filepath.Join(dir, "index.json"), idx)
}

// layoutHolds checks that the OCI layout in dir indexes digest.
func layoutHolds(t testing.TB, dir, digest string, fail bool) bool {
	t.Helper()
	idx, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err == nil && strings.Contains(string(idx), digest) {
		return true
	}
	if fail {
		t.Fatalf("layout %s does not hold %s (%v): %s", dir, digest, err, idx)
	}
	return false
}

func craneFlow(a *authServer) clientFlow {
	R := a.Addr
	var crane string
	img := makeImage(a.t, "crane with a login\n")
	return clientFlow{
		newTool: func(t *testing.T) *tool {
			crane = needTool(t, "crane")
			tl := newTool(t)
			writeLayout(tl, "layout", img)
			return tl
		},
		login: func(tl *tool, user, pass string) (cmdResult, error) {
			return tl.try(nil, crane, "auth", "login", R, "-u", user, "-p", pass)
		},
		push: func(tl *tool, repo string) (cmdResult, error) {
			return tl.try(nil, crane, "push", "--insecure", "layout", R+"/"+repo+":v1")
		},
		pull: func(tl *tool, repo string, fail bool) bool {
			out := tl.path(randomName("pull-"))
			if _, err := tl.try(nil, crane, "pull", "--insecure", "--format=oci", R+"/"+repo+":v1", out); err != nil {
				if fail {
					tl.t.Fatalf("crane pull %s: %v", repo, err)
				}
				return false
			}
			return layoutHolds(tl.t, out, img.Digest, fail)
		},
		list: func(tl *tool) (cmdResult, error) { return tl.try(nil, crane, "catalog", "--insecure", R) },
	}
}

func orasFlow(a *authServer) clientFlow {
	R := a.Addr
	var oras string
	content := []byte("oras with a login\n")
	return clientFlow{
		newTool: func(t *testing.T) *tool {
			oras = needTool(t, "oras")
			tl := newTool(t)
			tl.write("file.txt", content)
			return tl
		},
		login: func(tl *tool, user, pass string) (cmdResult, error) {
			return tl.try(nil, oras, "login", "--plain-http", "-u", user, "-p", pass, R)
		},
		loginChecks: true,
		push: func(tl *tool, repo string) (cmdResult, error) {
			return tl.try(nil, oras, "push", "--plain-http", R+"/"+repo+":v1", "file.txt:text/plain")
		},
		pull: func(tl *tool, repo string, fail bool) bool {
			out := randomName("pull-")
			if _, err := tl.try(nil, oras, "pull", "--plain-http", "-o", out, R+"/"+repo+":v1"); err != nil {
				if fail {
					tl.t.Fatalf("oras pull %s: %v", repo, err)
				}
				return false
			}
			equalFile(tl.t, tl.path(out, "file.txt"), content)
			return true
		},
		list: func(tl *tool) (cmdResult, error) { return tl.try(nil, oras, "repo", "ls", "--plain-http", R) },
	}
}

func skopeoFlow(a *authServer) clientFlow {
	R := a.Addr
	var skopeo string
	img := makeImage(a.t, "skopeo with a login\n")
	return clientFlow{
		newTool: func(t *testing.T) *tool {
			skopeo = needTool(t, "skopeo")
			tl := newTool(t)
			tl.write("policy.json", []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`))
			writeLayout(tl, "layout", img)
			return tl
		},
		login: func(tl *tool, user, pass string) (cmdResult, error) {
			return tl.try(nil, skopeo, "login", "--tls-verify=false", "-u", user, "-p", pass, R)
		},
		loginChecks: true,
		push: func(tl *tool, repo string) (cmdResult, error) {
			return tl.try(nil, skopeo, "--policy", "policy.json", "copy", "--dest-tls-verify=false", "oci:layout:v1", "docker://"+R+"/"+repo+":v1")
		},
		pull: func(tl *tool, repo string, fail bool) bool {
			out := randomName("pull-")
			if _, err := tl.try(nil, skopeo, "--policy", "policy.json", "copy", "--src-tls-verify=false", "docker://"+R+"/"+repo+":v1", "oci:"+out+":v1"); err != nil {
				if fail {
					tl.t.Fatalf("skopeo pull %s: %v", repo, err)
				}
				return false
			}
			return layoutHolds(tl.t, tl.path(out), img.Digest, fail)
		},
	}
}

func regctlFlow(a *authServer) clientFlow {
	R := a.Addr
	var regctl string
	content := "regctl with a login\n"
	return clientFlow{
		newTool: func(t *testing.T) *tool {
			regctl = needTool(t, "regctl")
			tl := newTool(t) // private HOME: ~/.regctl/config.json is this tool's
			tl.write("file.txt", []byte(content))
			tl.run(regctl, "registry", "set", "--skip-check", "--tls", "disabled", R) // its check would need the login
			return tl
		},
		login: func(tl *tool, user, pass string) (cmdResult, error) {
			return tl.try(nil, regctl, "registry", "login", R, "-u", user, "-p", pass)
		},
		loginChecks: true,
		push: func(tl *tool, repo string) (cmdResult, error) {
			return tl.try(nil, regctl, "artifact", "put", "--artifact-type", "application/vnd.acme.test.v1+json",
				"--file", "file.txt", "--file-media-type", "text/plain", R+"/"+repo+":v1")
		},
		pull: func(tl *tool, repo string, fail bool) bool {
			res, err := tl.try(nil, regctl, "artifact", "get", R+"/"+repo+":v1")
			if err != nil || res.Stdout != content {
				if fail {
					tl.t.Fatalf("regctl artifact get %s: %v %q", repo, err, res.Stdout)
				}
				return false
			}
			return true
		},
		list: func(tl *tool) (cmdResult, error) { return tl.try(nil, regctl, "repo", "ls", R) },
	}
}

func helmFlow(a *authServer) clientFlow {
	R := a.Addr
	var helm string
	pushed := map[string][]byte{} // repo -> the chart archive pushed there
	return clientFlow{
		newTool: func(t *testing.T) *tool {
			helm = needTool(t, "helm")
			home := t.TempDir()
			tl := newTool(t,
				"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
				"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
				"HELM_DATA_HOME="+filepath.Join(home, "data"),
				"HELM_REGISTRY_CONFIG="+filepath.Join(home, "config", "registry.json"),
			)
			tl.run(helm, "create", "demochart")
			tl.run(helm, "package", "demochart")
			return tl
		},
		login: func(tl *tool, user, pass string) (cmdResult, error) {
			return tl.try(nil, helm, "registry", "login", R, "--plain-http", "-u", user, "-p", pass)
		},
		loginChecks: true,
		push: func(tl *tool, repo string) (cmdResult, error) {
			res, err := tl.try(nil, helm, "push", "demochart-0.1.0.tgz", "oci://"+R+"/"+repo, "--plain-http")
			if err == nil {
				pushed[repo], _ = os.ReadFile(tl.path("demochart-0.1.0.tgz"))
			}
			return res, err
		},
		pull: func(tl *tool, repo string, fail bool) bool {
			out := randomName("pull-")
			os.MkdirAll(tl.path(out), 0o755)
			if _, err := tl.try(nil, helm, "pull", "oci://"+R+"/"+repo+"/demochart", "--version", "0.1.0", "--plain-http", "-d", out); err != nil {
				if fail {
					tl.t.Fatalf("helm pull %s: %v", repo, err)
				}
				return false
			}
			equalFile(tl.t, tl.path(out, "demochart-0.1.0.tgz"), pushed[repo])
			return true
		},
	}
}

// cosignFlow: push is cosign sign (root pushed the image first), pull is
// cosign verify.
func cosignFlow(a *authServer) clientFlow {
	R := a.Addr
	var cosign string
	keys := a.t.TempDir() // one key pair, so any identity verifies what another signed
	key, pub := filepath.Join(keys, "cosign.key"), filepath.Join(keys, "cosign.pub")
	ref := func(repo string) string {
		if len(a.tags(repo)) == 0 {
			wantAnswer(a.t, "root pushes "+repo, a.pushImage("basic:root", repo, "v1", []byte(`{"repo":"`+repo+`"}`)), 201, "")
		}
		return R + "/" + repo + "@" + a.digest(repo, "v1")
	}
	return clientFlow{
		prepare: func(repo string) { ref(repo) },
		newTool: func(t *testing.T) *tool {
			cosign = needTool(t, "cosign")
			tl := newTool(t, "COSIGN_PASSWORD=", "COSIGN_YES=true", "TUF_ROOT="+filepath.Join(t.TempDir(), "tuf"))
			if _, err := os.Stat(key); err != nil {
				tl.runEnv([]string{"COSIGN_PASSWORD="}, cosign, "generate-key-pair", "--output-key-prefix", filepath.Join(keys, "cosign"))
			}
			return tl
		},
		login: func(tl *tool, user, pass string) (cmdResult, error) {
			return tl.try(nil, cosign, "login", R, "-u", user, "-p", pass)
		},
		push: func(tl *tool, repo string) (cmdResult, error) {
			return tl.try(nil, cosign, "sign", "--key", key, "--tlog-upload=false", "-y", ref(repo))
		},
		pull: func(tl *tool, repo string, fail bool) bool {
			_, err := tl.try(nil, cosign, "verify", "--key", pub, "--insecure-ignore-tlog=true", ref(repo))
			if err != nil && fail {
				tl.t.Fatalf("cosign verify %s: %v", repo, err)
			}
			return err == nil
		},
	}
}
