package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// A keyword/value PostgreSQL DSN (libpq's other form) is redacted like a
// URL, in every message: config print, errors, startup failures.
func TestKeywordValueDSN(t *testing.T) {
	for in, want := range map[string]string{
		"host=db user=x password=secret dbname=packreg":       "host=db user=x password=xxxxx dbname=packreg",
		"host=db password='se cret' dbname=packreg":           "host=db password=xxxxx dbname=packreg",
		"host = db  password = 'it\\'s' sslpassword=k port=1": "host=db password=xxxxx sslpassword=xxxxx port=1",
		"password=secret": "password=xxxxx",
		"host=/var/run/postgresql dbname='my db' password=":    "host=/var/run/postgresql dbname='my db' password=xxxxx",
		"dbname=p\tpassword=x\\ y":                             "dbname=p password=xxxxx",
		"host=db password='unterminated":                       "xxxxx",
		"host=db password=secret garbage":                      "xxxxx",
		"garbage password=secret":                              "xxxxx",
		"user@host password=secret":                            "xxxxx",
		"./relative/path":                                      "./relative/path",
		"postgres://u:secret@h/db?sslmode=disable":             "postgres://u:xxxxx@h/db?sslmode=disable",
		"postgres://u@h/db?password=secret&application_name=a": "postgres://u@h/db?application_name=a&password=xxxxx",
	} {
		got := redact(in)
		if got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, "secret") || strings.Contains(got, "cret") {
			t.Errorf("redact(%q) leaks: %q", in, got)
		}
	}

	const dsn = "host=127.0.0.1 port=1 user=packreg password=hunter2 dbname=packreg sslmode=disable connect_timeout=2"
	du, err := ParseDatabaseURL(dsn)
	if err != nil || du.Kind != "postgres" || du.DSN != dsn {
		t.Fatalf("ParseDatabaseURL(keyword/value) = %+v, %v", du, err)
	}
	for _, args := range [][]string{
		{"config", "print", "--data", t.TempDir(), "--database", dsn},
		{"serve", "--data", t.TempDir(), "--database", dsn, "--addr", "127.0.0.1:0"}, // nothing listens on port 1
		{"config", "print", "--data", t.TempDir(), "--database", "host=db password=hunter2 'broken"},
		{"serve", "--data", t.TempDir(), "--storage", "host=db password=hunter2"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), args, &stdout, &stderr)
		out := stdout.String() + stderr.String()
		if strings.Contains(out, "hunter2") {
			t.Errorf("packreg %s (exit %d) leaks the password:\n%s", args[0], code, out)
		}
		if args[0] == "config" && code == 0 && !strings.Contains(out, "password=xxxxx") {
			t.Errorf("config print lost the redacted password:\n%s", out)
		}
		if args[0] == "serve" && code == 0 {
			t.Errorf("serve started with %q", args)
		}
	}

	// A driver error quoting the password is replaced.
	if err := scrub(errors.New(`cannot parse "password=hunter2"`), dsn); strings.Contains(err.Error(), "hunter2") {
		t.Errorf("scrub kept %v", err)
	}
	if err := scrub(errors.New("connection refused"), dsn); err.Error() != "connection refused" {
		t.Errorf("scrub changed a harmless error: %v", err)
	}
}
