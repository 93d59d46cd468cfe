package digest

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	h64 := strings.Repeat("a", 64)
	h128 := strings.Repeat("0", 128)
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"sha256:" + h64, true},
		{"sha512:" + h128, true},
		{"sha256:" + strings.ToUpper(h64), false},
		{"sha256:" + h64[:63], false},
		{"sha256:" + h64 + "a", false},
		{"sha512:" + h64, false},
		{"md5:" + h64, false},
		{"sha256" + h64, false},
		{"", false},
		{":", false},
		{"sha256:" + h64[:62] + "zz", false},
		{"sha256:../../../../etc/passwd" + h64[:40], false},
	} {
		d, err := Parse(tc.in)
		if tc.ok != (err == nil) {
			t.Errorf("Parse(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) error %v does not wrap ErrInvalid", tc.in, err)
		}
		if tc.ok && string(d) != tc.in {
			t.Errorf("Parse(%q) = %q", tc.in, d)
		}
	}
}

func TestFromBytesAndResume(t *testing.T) {
	// sha256 of "" is well known.
	if got := FromBytes(SHA256, nil); got != "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("FromBytes = %s", got)
	}
	for _, alg := range []string{SHA256, SHA512} {
		h := NewHash(alg)
		h.Write([]byte("hello "))
		state, err := MarshalHash(h)
		if err != nil {
			t.Fatal(err)
		}
		r, err := RestoreHash(alg, state)
		if err != nil {
			t.Fatal(err)
		}
		r.Write([]byte("world"))
		if got, want := FromHash(alg, r), FromBytes(alg, []byte("hello world")); got != want {
			t.Errorf("%s resumed = %s, want %s", alg, got, want)
		}
	}
	if _, err := RestoreHash("md5", nil); err == nil {
		t.Error("RestoreHash(md5) succeeded")
	}
	if _, err := RestoreHash(SHA256, []byte("garbage")); err == nil {
		t.Error("RestoreHash(garbage) succeeded")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("sha256:" + strings.Repeat("a", 64))
	f.Add("sha512:x")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(string(d), "/\\.") || d.Algorithm()+":"+d.Hex() != s {
			t.Fatalf("accepted unsafe digest %q", s)
		}
	})
}
