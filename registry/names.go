package registry

import (
	"net/http"
	"strings"

	"github.com/packreg/packreg/digest"
)

const (
	maxNameLen = 255
	maxTagLen  = 128
)

// validName checks a repository name against the distribution-spec grammar
//
//	[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
//
// by hand: the length is checked first, and no regexp ever runs on hostile
// input of arbitrary size.
func validName(name string) bool {
	if len(name) == 0 || len(name) > maxNameLen {
		return false
	}
	for comp := range strings.SplitSeq(name, "/") {
		if !validComponent(comp) {
			return false
		}
	}
	return true
}

func validComponent(c string) bool {
	if c == "" || !alnum(c[0]) || !alnum(c[len(c)-1]) {
		return false
	}
	for i := 0; i < len(c); {
		if alnum(c[i]) {
			i++
			continue
		}
		// A separator run: ".", "_", "__" or one or more "-".
		j := i
		for j < len(c) && !alnum(c[j]) {
			j++
		}
		sep := c[i:j]
		switch {
		case sep == "." || sep == "_" || sep == "__":
		case strings.Trim(sep, "-") == "":
		default:
			return false
		}
		i = j
	}
	return true
}

func alnum(b byte) bool { return 'a' <= b && b <= 'z' || '0' <= b && b <= '9' }

// validTag checks [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func validTag(tag string) bool {
	if len(tag) == 0 || len(tag) > maxTagLen {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' ||
			i > 0 && (c == '.' || c == '-')
		if !ok {
			return false
		}
	}
	return true
}

// parseDigest validates a digest from a URL or query, as an OCI error.
func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", ociErr(http.StatusBadRequest, codeDigestInvalid, "%v", err)
	}
	return d, nil
}

// reference is a manifest reference: a tag or a digest, never both.
type reference struct {
	tag    string
	digest digest.Digest
}

// parseReference classifies ref. Anything with a colon must be a valid digest.
func parseReference(ref string) (reference, error) {
	if strings.Contains(ref, ":") {
		d, err := parseDigest(ref)
		return reference{digest: d}, err
	}
	if !validTag(ref) {
		return reference{}, ociErr(http.StatusBadRequest, codeDigestInvalid,
			"reference %q is neither a valid tag nor a valid digest", clip(ref))
	}
	return reference{tag: ref}, nil
}

// clip keeps hostile input out of messages at a readable length.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
