package conformance

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// chartDir is the chart, absolute: helm runs in the tool's directory.
var chartDir = func() string {
	p, err := filepath.Abs("../deploy/helm/packreg")
	if err != nil {
		panic(err)
	}
	return p
}()

// helmTool is a helm with private cache, config and data directories.
func helmTool(t *testing.T) (*tool, string) {
	helm := needTool(t, "helm")
	home := t.TempDir()
	return newTool(t,
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"HELM_REGISTRY_CONFIG="+filepath.Join(home, "config", "registry.json"),
	), helm
}

// k8sObject is the part of a rendered manifest the test reads.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name        string            `yaml:"name"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Replicas *int `yaml:"replicas"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []struct {
					Args           []string                `yaml:"args"`
					Env            []struct{ Name string } `yaml:"env"`
					LivenessProbe  probe                   `yaml:"livenessProbe"`
					ReadinessProbe probe                   `yaml:"readinessProbe"`
					StartupProbe   probe                   `yaml:"startupProbe"`
					VolumeMounts   []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name                  string    `yaml:"name"`
					PersistentVolumeClaim yaml.Node `yaml:"persistentVolumeClaim"`
					EmptyDir              yaml.Node `yaml:"emptyDir"`
					Secret                struct {
						SecretName string `yaml:"secretName"`
					} `yaml:"secret"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type probe struct {
	HTTPGet struct {
		Path   string `yaml:"path"`
		Port   string `yaml:"port"`
		Scheme string `yaml:"scheme"`
	} `yaml:"httpGet"`
}

// render runs helm template and returns the objects by kind.
func render(t *testing.T, tl *tool, helm string, args ...string) map[string]k8sObject {
	t.Helper()
	out := tl.run(helm, append([]string{"template", "rel", chartDir}, args...)...).Stdout
	objs := map[string]k8sObject{}
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("helm template output: %v\n%s", err, out)
		}
		if o.Kind != "" {
			if _, dup := objs[o.Kind]; dup {
				t.Fatalf("two %s objects", o.Kind)
			}
			objs[o.Kind] = o
		}
	}
}

// TestHelmChart lints and renders deploy/helm/packreg (the embedded
// defaults for one replica, and S3 + PostgreSQL for several), checks that
// the config it writes is one the binary accepts, that probes and metrics
// annotations are wired, then packages it and round-trips it through
// packreg itself as an OCI chart.
func TestHelmChart(t *testing.T) {
	tl, helm := helmTool(t)
	s3Values := filepath.Join(chartDir, "values-s3-postgres.yaml")
	tl.run(helm, "lint", "--strict", chartDir)
	tl.run(helm, "lint", "--strict", chartDir, "-f", s3Values)

	t.Run("embedded, one replica", func(t *testing.T) {
		objs := render(t, tl, helm)
		for _, k := range []string{"Deployment", "Service", "Secret", "PersistentVolumeClaim", "ServiceAccount"} {
			if _, ok := objs[k]; !ok {
				t.Errorf("no %s rendered", k)
			}
		}
		d := objs["Deployment"]
		checkPod(t, d)
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != "Recreate" {
			t.Errorf("replicas %v, strategy %q: want 1 and Recreate (one writer of SQLite)", d.Spec.Replicas, d.Spec.Strategy.Type)
		}
		if v := volume(d, "data"); v == nil || v.PersistentVolumeClaim.Kind == 0 {
			t.Error("the data volume is not the claim")
		}
		raw := objs["Secret"].StringData["config.yaml"]
		if !strings.Contains(raw, "allow_anonymous: false") {
			t.Errorf("the chart's config serves anonymously by default:\n%s", raw)
		}
		cfg := acceptedConfig(t, raw)
		for _, want := range []string{`addr: :5000`, "data: /var/lib/packreg", "storage: file:///var/lib/packreg",
			"database: sqlite:///var/lib/packreg/packreg.db", "format: json"} {
			if !strings.Contains(cfg, want) {
				t.Errorf("effective config lacks %q:\n%s", want, cfg)
			}
		}
	})
	t.Run("s3 and postgres, two replicas", func(t *testing.T) {
		objs := render(t, tl, helm, "-f", s3Values, "--set", "config.registry.upload_ttl=2h")
		if _, ok := objs["PersistentVolumeClaim"]; ok {
			t.Error("a volume claim for S3 + PostgreSQL")
		}
		d := objs["Deployment"]
		checkPod(t, d)
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 || d.Spec.Strategy.Type != "RollingUpdate" {
			t.Errorf("replicas %v, strategy %q", d.Spec.Replicas, d.Spec.Strategy.Type)
		}
		env := map[string]bool{}
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			env[e.Name] = true
		}
		if !env["AWS_ACCESS_KEY_ID"] || !env["AWS_SECRET_ACCESS_KEY"] {
			t.Errorf("S3 credentials not passed from the secret: %v", env)
		}
		cfg := acceptedConfig(t, objs["Secret"].StringData["config.yaml"])
		for _, want := range []string{"storage: s3://packreg-blobs/prod?", "database: postgres://packreg:xxxxx@postgres:5432/packreg",
			"upload_ttl: 2h0m0s"} {
			if !strings.Contains(cfg, want) {
				t.Errorf("effective config lacks %q:\n%s", want, cfg)
			}
		}
	})
	t.Run("several replicas need S3 and PostgreSQL", func(t *testing.T) {
		r, err := tl.try(nil, helm, "template", "rel", chartDir, "--set", "replicaCount=3")
		if err == nil || !strings.Contains(r.Stderr, "replicaCount > 1 needs storage") {
			t.Fatalf("replicaCount=3 on the embedded stores rendered (err %v):\n%s", err, clip(r.Stderr))
		}
	})
	t.Run("auth on several replicas", func(t *testing.T) {
		objs := render(t, tl, helm, "-f", s3Values, "--set", "auth.htpasswdSecret=users,auth.tokenKeySecret=tokkey,tls.secret=cert",
			"--set", "auth.admins={alice}")
		d := objs["Deployment"]
		checkPod(t, d)
		cfg := acceptedConfig(t, objs["Secret"].StringData["config.yaml"])
		for _, want := range []string{"htpasswd: /etc/packreg-auth/htpasswd", "key: /etc/packreg-token/token-key.pem",
			"cert: /etc/packreg-tls/tls.crt", "key: /etc/packreg-tls/tls.key", "- alice"} {
			if !strings.Contains(cfg, want) {
				t.Errorf("effective config lacks %q:\n%s", want, cfg)
			}
		}
		mounts := map[string]string{}
		for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
			mounts[m.Name] = m.MountPath
		}
		for name, want := range map[string][2]string{"auth": {"/etc/packreg-auth", "users"}, "token-key": {"/etc/packreg-token", "tokkey"},
			"tls": {"/etc/packreg-tls", "cert"}} {
			if v := volume(d, name); v == nil || v.Secret.SecretName != want[1] || mounts[name] != want[0] {
				t.Errorf("volume %s: %+v mounted at %q, want secret %s at %s", name, v, mounts[name], want[1], want[0])
			}
		}
		c := d.Spec.Template.Spec.Containers[0]
		for _, p := range []probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if p.HTTPGet.Scheme != "HTTPS" {
				t.Errorf("probe %s over %q with tls on", p.HTTPGet.Path, p.HTTPGet.Scheme)
			}
		}
	})
	t.Run("auth settings refused", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"-f", s3Values, "--set", "auth.htpasswdSecret=users,insecureHTTP=true"}, "needs auth.tokenKeySecret"},
			{[]string{"--set", "auth.htpasswdSecret=users"}, "auth needs tls.secret, or insecureHTTP=true"},
			{[]string{"--set", "auth.tokenKeySecret=tokkey"}, "need auth.htpasswdSecret"},
		} {
			r, err := tl.try(nil, helm, append([]string{"template", "rel", chartDir}, tc.args...)...)
			if err == nil || !strings.Contains(r.Stderr, tc.want) {
				t.Errorf("%v rendered (err %v), want %q:\n%s", tc.args, err, tc.want, clip(r.Stderr))
			}
		}
	})

	t.Run("pushed to packreg as an OCI chart", func(t *testing.T) {
		s := startServer(t)
		tl.run(helm, "package", chartDir, "-d", tl.path("pkg"))
		tgz, err := os.ReadFile(tl.path("pkg", "packreg-0.1.0.tgz"))
		if err != nil {
			t.Fatal(err)
		}
		tl.run(helm, "push", tl.path("pkg", "packreg-0.1.0.tgz"), "oci://"+s.Addr+"/charts", "--plain-http")
		os.MkdirAll(tl.path("pulled"), 0o755)
		tl.run(helm, "pull", "oci://"+s.Addr+"/charts/packreg", "--version", "0.1.0", "--plain-http", "-d", tl.path("pulled"))
		got, err := os.ReadFile(tl.path("pulled", "packreg-0.1.0.tgz"))
		if err != nil || !bytes.Equal(got, tgz) {
			t.Fatalf("pulled chart differs from the pushed one (err %v)", err)
		}
		show := tl.run(helm, "show", "values", "oci://"+s.Addr+"/charts/packreg", "--version", "0.1.0", "--plain-http").Stdout
		if !strings.Contains(show, "replicaCount: 1") {
			t.Fatalf("helm show values from packreg:\n%s", show)
		}
	})
}

// checkPod: probes on /healthz and /readyz, metrics annotations, non-root.
func checkPod(t *testing.T, d k8sObject) {
	t.Helper()
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.StartupProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("probes: liveness %q, readiness %q, startup %q", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path, c.StartupProbe.HTTPGet.Path)
	}
	if strings.Join(c.Args, " ") != "serve --config /etc/packreg/config.yaml" {
		t.Errorf("args %q", c.Args)
	}
	a := d.Spec.Template.Metadata.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != "/metrics" || a["prometheus.io/port"] != "5000" {
		t.Errorf("pod annotations %v", a)
	}
	if !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser != 65532 {
		t.Errorf("pod security context %+v", pod.SecurityContext)
	}
}

func volume(d k8sObject, name string) *struct {
	Name                  string    `yaml:"name"`
	PersistentVolumeClaim yaml.Node `yaml:"persistentVolumeClaim"`
	EmptyDir              yaml.Node `yaml:"emptyDir"`
	Secret                struct {
		SecretName string `yaml:"secretName"`
	} `yaml:"secret"`
} {
	for i, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return &d.Spec.Template.Spec.Volumes[i]
		}
	}
	return nil
}

// acceptedConfig feeds a config file to `packreg config print`, which
// decodes it strictly and validates it (the pod adds --allow-anonymous
// nowhere, so a non-loopback addr needs it: given here only to validate),
// and returns the effective config.
func acceptedConfig(t *testing.T, text string) string {
	t.Helper()
	if text == "" {
		t.Fatal("the chart wrote no config.yaml")
	}
	f := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(f, []byte(text), 0o644)
	out, err := exec.Command(packregBin, "config", "print", "--config", f, "--allow-anonymous").CombinedOutput()
	if err != nil {
		t.Fatalf("packreg refuses the chart's config: %v\n%s\nconfig:\n%s", err, out, text)
	}
	return string(out)
}

// TestSystemdUnit: the example unit passes systemd's own checks (with no
// warning: an unknown key is only a warning there), and the example
// config it names is one packreg accepts.
func TestSystemdUnit(t *testing.T) {
	analyze := needTool(t, "systemd-analyze")
	unit, err := os.ReadFile("../deploy/systemd/packreg.service")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(unit, []byte("ExecStart=/usr/local/bin/packreg serve --config /etc/packreg/config.yaml")) {
		t.Fatal("ExecStart is not packreg serve --config /etc/packreg/config.yaml")
	}
	// verify wants ExecStart's binary to exist: point it at the one under test.
	f := filepath.Join(t.TempDir(), "packreg.service")
	os.WriteFile(f, bytes.ReplaceAll(unit, []byte("/usr/local/bin/packreg"), []byte(packregBin)), 0o644)
	cmd := exec.Command(analyze, "verify", "--man=no", f)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || strings.TrimSpace(stderr.String()) != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, stderr.String())
	}
	cfg, err := os.ReadFile("../deploy/systemd/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if out := acceptedConfig(t, string(cfg)); !strings.Contains(out, "data: /var/lib/packreg") {
		t.Fatalf("effective config:\n%s", out)
	}
}
