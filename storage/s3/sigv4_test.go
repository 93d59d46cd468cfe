package s3

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// TestSignV4MatchesSDK: the direct calls' signature is the SDK's
// v4.Signer's (path unescaped, as S3 signs it), header for header, for a
// PUT with its body's headers and a HEAD, with and without a session
// token, across a day's change (the derived key is kept for a day).
func TestSignV4MatchesSDK(t *testing.T) {
	sdk := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	d := &direct{region: "eu-west-3"}
	build := func(method, url string, body []byte) *http.Request {
		var r *http.Request
		if body != nil {
			r, _ = http.NewRequest(method, url, bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/octet-stream")
			r.Header.Set("X-Amz-Checksum-Crc32", "AAAAAA==")
			r.Header.Set("X-Amz-Sdk-Checksum-Algorithm", "CRC32")
		} else {
			r, _ = http.NewRequest(method, url, nil)
		}
		r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		return r
	}
	day := time.Date(2026, 12, 3, 23, 59, 59, 0, time.UTC)
	for _, c := range []struct {
		name, method, url string
		body              []byte
		token             string
		at                time.Time
	}{
		{"put", http.MethodPut, "http://127.0.0.1:7070/b/p/blobs/sha256/ab/ab12", []byte("hello"), "", day},
		{"put, next day", http.MethodPut, "http://127.0.0.1:7070/b/p/blobs/sha256/ab/ab12", []byte("hello"), "", day.Add(2 * time.Second)},
		{"empty put", http.MethodPut, "http://s3.example:9000/b/k", []byte{}, "", day},
		{"head with token", http.MethodHead, "http://s3.example:9000/b/p/blobs/sha256/cd/cd34", nil, "tok/en+=", day},
		{"default port", http.MethodHead, "http://s3.example:80/b/k", nil, "", day},
		{"https", http.MethodPut, "https://s3.example/b/k-1_2.x", []byte("x"), "tok", day},
	} {
		creds := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: c.token}
		want, got := build(c.method, c.url, c.body), build(c.method, c.url, c.body)
		if err := sdk.SignHTTP(context.Background(), creds, want, "UNSIGNED-PAYLOAD", "s3", d.region, c.at); err != nil {
			t.Fatal(err)
		}
		d.signV4(got, creds, "UNSIGNED-PAYLOAD", c.at)
		if want.Header.Get("Authorization") == "" {
			t.Fatalf("%s: the SDK signed nothing", c.name)
		}
		for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
			if w, g := want.Header.Get(h), got.Header.Get(h); w != g {
				t.Errorf("%s: %s = %q, want the SDK's %q", c.name, h, g, w)
			}
		}
		if want.Host != got.Host {
			t.Errorf("%s: Host = %q, want the SDK's %q", c.name, got.Host, want.Host)
		}
	}
}
