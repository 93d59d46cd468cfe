package s3

import (
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	good := []struct {
		in   string
		want Config
	}{
		{"s3://packreg-test", Config{Bucket: "packreg-test"}},
		{"s3://packreg-test/", Config{Bucket: "packreg-test"}},
		{"s3://b.example-1/a/b_c/d.e?region=eu-west-1",
			Config{Bucket: "b.example-1", Prefix: "a/b_c/d.e", Region: "eu-west-1"}},
		{"s3://packreg-test/ci?endpoint=http://127.0.0.1:7070&region=us-east-1",
			Config{Bucket: "packreg-test", Prefix: "ci", Endpoint: "http://127.0.0.1:7070", Region: "us-east-1"}},
		{"s3://bkt/p/?presign=true&presign_ttl=90s&part_size=8MiB&max_attempts=7&max_backoff=1s&endpoint=https://s3.example.com/",
			Config{Bucket: "bkt", Prefix: "p", Presign: true, PresignTTL: 90 * time.Second, PartSize: 8 << 20,
				MaxAttempts: 7, MaxBackoff: time.Second, Endpoint: "https://s3.example.com/"}},
		{"s3://bkt?part_size=5242880&presign=0", Config{Bucket: "bkt", PartSize: 5 << 20}},
		{"s3://bkt?read_ahead=4", Config{Bucket: "bkt", ReadAhead: 4}},
		{"s3://bkt?read_ahead=0", Config{Bucket: "bkt"}},
		{"s3://bkt?endpoint=http://minio:9000&splice=false", Config{Bucket: "bkt", Endpoint: "http://minio:9000", NoSplice: true}},
		{"s3://bkt?splice=true", Config{Bucket: "bkt"}},
	}
	for _, tc := range good {
		got, err := ParseURL(tc.in)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}

	bad := []struct{ in, why string }{
		{"", "scheme"},
		{"http://bucket/prefix", "scheme"},
		{"s3:bucket", "opaque"},
		{"s3://", "bucket"},
		{"s3://ab", "bucket"},
		{"s3://Bucket", "bucket"},
		{"s3://-bucket", "bucket"},
		{"s3://bucket-", "bucket"},
		{"s3://buck..et", "bucket"},
		{"s3://" + strings.Repeat("a", 64), "bucket"},
		{"s3://bucket_x", "bucket"},
		{"s3://user:pw@bucket", "userinfo"},
		{"s3://bucket/p#frag", "fragment"},
		{"s3://bucket/a//b", "prefix"},
		{"s3://bucket/a/../b", "prefix"},
		{"s3://bucket/a b", "prefix"},
		{"s3://bucket/a%20b", "prefix"},
		{"s3://bucket?endpoint=127.0.0.1:7070", "endpoint"},
		{"s3://bucket?endpoint=ftp://host", "endpoint"},
		{"s3://bucket?endpoint=http://host/path", "endpoint"},
		{"s3://bucket?endpoint=http://", "endpoint"},
		{"s3://bucket?presign=maybe", "presign"},
		{"s3://bucket?presign_ttl=10", "presign_ttl"},
		{"s3://bucket?presign_ttl=200h", "presign ttl"},
		{"s3://bucket?part_size=1MiB", "part size"},
		{"s3://bucket?part_size=6GiB", "part_size"},
		{"s3://bucket?part_size=-5", "part_size"},
		{"s3://bucket?part_size=lots", "part_size"},
		{"s3://bucket?max_attempts=x", "max_attempts"},
		{"s3://bucket?max_attempts=50", "max attempts"},
		{"s3://bucket?max_backoff=1h", "max backoff"},
		{"s3://bucket?read_ahead=-1", "read ahead"},
		{"s3://bucket?read_ahead=9", "read ahead"},
		{"s3://bucket?read_ahead=x", "read_ahead"},
		{"s3://bucket?splice=on", "splice"},
		{"s3://bucket?region=a&region=b", "2 times"},
		{"s3://bucket?regoin=us-east-1", "unknown parameter"},
		// A pair that does not parse was dropped, the rest accepted (found
		// by FuzzDecodeConfig: its config print then failed to validate).
		{"s3://bucket?%X0=1", "query"},
		{"s3://bucket?region=us-east-1&part_size=8%MiB", "query"},
	}
	for _, tc := range bad {
		_, err := ParseURL(tc.in)
		if err == nil {
			t.Errorf("ParseURL(%q) succeeded, want an error about %s", tc.in, tc.why)
		} else if !strings.Contains(err.Error(), tc.why) {
			t.Errorf("ParseURL(%q) = %v, want an error about %s", tc.in, err, tc.why)
		}
	}
}

func TestValidateDefaults(t *testing.T) {
	c := Config{Bucket: "bkt"}.withDefaults()
	if c.PartSize != DefaultPartSize || c.PresignTTL != DefaultPresignTTL ||
		c.MaxAttempts != DefaultMaxAttempts || c.MaxBackoff != DefaultMaxBackoff {
		t.Fatalf("defaults: %+v", c)
	}
	if err := (Config{Bucket: "bkt", Prefix: "/a"}).Validate(); err == nil {
		t.Fatal("a prefix with a leading slash validated")
	}
}

func TestLoopbackEndpoint(t *testing.T) {
	for ep, want := range map[string]bool{
		"http://127.0.0.1:7070": true, "http://[::1]:9000": true, "http://localhost:9000": true, "http://127.8.9.10": true,
		"https://127.0.0.1:7070": false, "http://10.0.0.5:9000": false, "http://s3.example.com": false,
		"http://localhost.example.com": false, "": false,
	} {
		if got := loopbackEndpoint(ep); got != want {
			t.Errorf("loopbackEndpoint(%q) = %v, want %v", ep, got, want)
		}
	}
}
