package main

import (
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/mirror"
)

func TestMirrorsConfig(t *testing.T) {
	c := DefaultConfig()
	c.Mirrors.Remotes = []mirror.Settings{
		{Name: "eu", Kind: "mirror", URL: "http://127.0.0.1:5001", Credentials: &mirror.Credentials{Username: "u", Password: "hunter2"}},
		{Name: "hq", Kind: "upstream", URL: "https://hq.example", Credentials: &mirror.Credentials{Token: "tok-123"}},
	}
	if err := c.Resolve(); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "hunter2") || strings.Contains(string(out), "tok-123") || !strings.Contains(string(out), "username: u") {
		t.Fatalf("config print shows secrets or lost the user:\n%s", out)
	}
	if c.Mirrors.Remotes[0].Credentials.Password != "hunter2" {
		t.Fatal("redaction changed the config itself")
	}
	for name, bad := range map[string]func(*Config){
		"kind":        func(c *Config) { c.Mirrors.Remotes[0].Kind = "sideways" },
		"url":         func(c *Config) { c.Mirrors.Remotes[0].URL = "ftp://x" },
		"twice":       func(c *Config) { c.Mirrors.Remotes[1].Kind, c.Mirrors.Remotes[1].Name = "mirror", "eu" },
		"schedule":    func(c *Config) { c.Mirrors.Remotes[0].Schedule = mirror.Duration(time.Second) },
		"versions":    func(c *Config) { c.Mirrors.Remotes[0].Versions = ">=banana" },
		"lease_ttl":   func(c *Config) { c.Mirrors.LeaseTTL = time.Second },
		"run_timeout": func(c *Config) { c.Mirrors.RunTimeout = 0 },
		"auth_realms": func(c *Config) { c.Mirrors.Remotes[1].AuthRealms = []string{"http://auth.hq.example"} }, // http for an https remote
		"metadata":    func(c *Config) { c.Mirrors.Remotes[0].URL = "http://169.254.169.254" },
	} {
		c2 := c
		c2.Mirrors.Remotes = append([]mirror.Settings(nil), c.Mirrors.Remotes...)
		bad(&c2)
		if err := c2.Validate(); err == nil {
			t.Errorf("%s: invalid mirrors config accepted", name)
		}
	}
}
