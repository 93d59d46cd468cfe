package main

import (
	"errors"
	"net/url"
	"strings"
)

// Secrets in store locations never reach a message: `config print`, the
// log, errors and startup failures show every --storage and --database
// value through redact. A database is a URL (postgres://u:pw@h/db?...) or
// a keyword/value DSN, libpq's other form (host=h user=u password=pw ...).

const redacted = "xxxxx"

// secretKey reports whether a URL query parameter or a DSN keyword holds
// a secret.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"password", "secret", "token", "passphrase", "sslkey"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// redact hides the secrets of a store URL or DSN. What is neither a URL
// with a scheme nor a well-formed keyword/value DSN is hidden whole when it
// could hold a secret ('=' or '@'), since we cannot tell where it is.
func redact(s string) string {
	if pairs, ok := parseKeywordValue(s); ok {
		for i := range pairs {
			if secretKey(pairs[i].key) {
				pairs[i].value = redacted
			}
		}
		return formatKeywordValue(pairs)
	}
	if u, err := url.Parse(s); err == nil && u.Scheme != "" || s == "" {
		return redactURL(s)
	}
	if strings.ContainsAny(s, "=@") {
		return redacted
	}
	return s
}

// redactURL hides the password of the userinfo and every secret-looking
// query parameter. A string that does not parse is hidden whole, since we
// cannot tell where its secret is.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return redacted
	}
	if u.Opaque != "" && strings.Contains(u.Opaque, "@") {
		return u.Scheme + ":" + redacted
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), redacted)
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = redacted
		} else {
			changed := false
			for k, vs := range q {
				if secretKey(k) {
					for i := range vs {
						vs[i] = redacted
					}
					changed = true
				}
			}
			if changed {
				u.RawQuery = q.Encode()
			}
		}
	}
	return u.String()
}

// kvPair is one keyword = value of a keyword/value DSN.
type kvPair struct{ key, value string }

// parseKeywordValue reads a libpq keyword/value connection string:
// keyword = value pairs separated by whitespace, a value either bare
// (backslash escapes) or single-quoted (\' and \\ inside). ok is false
// when s is not one, so a URL or a path is never taken for one.
func parseKeywordValue(s string) (pairs []kvPair, ok bool) {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' }
	i := 0
	skip := func() {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
	}
	for skip(); i < len(s); skip() {
		start := i
		for i < len(s) && (s[i] == '_' || 'a' <= s[i] && s[i] <= 'z' || 'A' <= s[i] && s[i] <= 'Z' || '0' <= s[i] && s[i] <= '9') {
			i++
		}
		key := s[start:i]
		skip()
		if key == "" || i == len(s) || s[i] != '=' {
			return nil, false
		}
		i++
		skip()
		var v strings.Builder
		quoted := i < len(s) && s[i] == '\''
		if quoted {
			i++
		}
		closed := !quoted
		for i < len(s) {
			c := s[i]
			if quoted && c == '\'' {
				i++
				closed = true
				break
			}
			if !quoted && isSpace(c) {
				break
			}
			if c == '\\' && i+1 < len(s) {
				i++
				c = s[i]
			}
			v.WriteByte(c)
			i++
		}
		if !closed || quoted && i < len(s) && !isSpace(s[i]) {
			return nil, false
		}
		pairs = append(pairs, kvPair{key, v.String()})
	}
	return pairs, len(pairs) > 0
}

// formatKeywordValue writes pairs back, quoting what needs it.
func formatKeywordValue(pairs []kvPair) string {
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.key)
		b.WriteByte('=')
		if p.value != "" && !strings.ContainsAny(p.value, " \t\n\r\f\v'\\") {
			b.WriteString(p.value)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(p.value))
		b.WriteByte('\'')
	}
	return b.String()
}

// scrub replaces an error whose text contains a secret of dsn.
func scrub(err error, dsn string) error {
	if err == nil {
		return nil
	}
	if redact(dsn) != dsn && containsSecret(err.Error(), dsn) {
		return errors.New("cannot connect (details hidden: they contain the database password)")
	}
	return err
}

// containsSecret reports whether text contains a secret of dsn (URL or
// keyword/value); a dsn it cannot read counts as secret.
func containsSecret(text, dsn string) bool {
	var secrets []string
	if pairs, ok := parseKeywordValue(dsn); ok {
		for _, p := range pairs {
			if secretKey(p.key) {
				secrets = append(secrets, p.value)
			}
		}
	} else {
		u, err := url.Parse(dsn)
		if err != nil {
			return true
		}
		if pw, ok := u.User.Password(); ok {
			secrets = append(secrets, pw)
		}
		for k, vs := range u.Query() {
			if secretKey(k) {
				secrets = append(secrets, vs...)
			}
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			return true
		}
	}
	return false
}
