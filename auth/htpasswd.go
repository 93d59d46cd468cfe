package auth

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/packreg/packreg/internal/filestamp"
	"golang.org/x/crypto/bcrypt"
)

// maxHtpasswd bounds the file read: a line per user, a few thousand users.
const maxHtpasswd = 4 << 20

// Htpasswd is a file of "user:bcrypt-hash" lines, re-read when it changes.
type Htpasswd struct {
	path string

	mu sync.Mutex
	// stamp and sum are the file as last read: a rewrite in the same
	// timestamp tick keeps size and mtime (a password changed at once
	// with `htpasswd -bB`: bcrypt lines are all 60 bytes), so in that
	// window the content is read again and its digest compared.
	stamp filestamp.Stamp
	sum   [32]byte
	users map[string][]byte
	// verified remembers, per user, an HMAC of the last password bcrypt
	// accepted, so Basic auth on every request costs one bcrypt per user
	// and file version, not one per request. It is emptied whenever the
	// file is re-read: a changed password or a removed user is never
	// served from it.
	verified map[string][32]byte
	key      []byte
}

// dummyHash is checked for unknown users, so a wrong name costs as much
// as a wrong password (no user enumeration by timing). It is made when
// the first htpasswd file is loaded, not at package init: a bcrypt at
// init cost every start of every command ~100 ms of CPU, with or
// without htpasswd configured.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("packreg: no such user"), bcrypt.DefaultCost)
	return h
})

// LoadHtpasswd reads the file at path; any line that is not a bcrypt
// entry is an error naming its line (never its content: it holds a hash).
func LoadHtpasswd(path string) (*Htpasswd, error) {
	h := &Htpasswd{path: path, key: make([]byte, 32)}
	rand.Read(h.key)
	dummyHash() // now, so the first unknown user costs no more than the next
	if err := h.reload(true); err != nil {
		return nil, err
	}
	return h, nil
}

// reload re-reads the file when it may have changed (filestamp), or when
// force. A file that became unreadable or invalid keeps no users: the
// server refuses every user rather than keep ones that may be removed.
func (h *Htpasswd) reload(force bool) error {
	fi, err := os.Stat(h.path)
	if err != nil {
		h.users = nil
		return fmt.Errorf("htpasswd: %w", err)
	}
	if !force && h.users != nil && h.stamp.Current(fi) {
		return nil
	}
	data, err := filestamp.ReadMax(h.path, maxHtpasswd)
	h.stamp.Read(fi, time.Now())
	sum := sha256.Sum256(data)
	if !force && h.users != nil && err == nil && sum == h.sum {
		return nil // read again, unchanged: keep what bcrypt accepted
	}
	h.sum = sum
	h.verified = map[string][32]byte{}
	var users map[string][]byte
	if err == nil {
		users, err = parseHtpasswd(h.path, data)
	} else {
		err = fmt.Errorf("htpasswd: %w", err)
	}
	if err != nil {
		h.users = nil
		return err
	}
	h.users = users
	return nil
}

func parseHtpasswd(path string, data []byte) (map[string][]byte, error) {
	users := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), maxHtpasswd)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || user == "robot" || strings.HasPrefix(user, RobotLoginPrefix) {
			return nil, fmt.Errorf("htpasswd %s line %d: want user:bcrypt-hash (\"robot\" and \"robot$...\" are no user names: robots log in as robot:<name> or robot$<name>)", path, n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil || !strings.HasPrefix(hash, "$2") {
			return nil, fmt.Errorf("htpasswd %s line %d (user %q): not a bcrypt hash; only bcrypt is accepted "+
				"(create entries with `htpasswd -nbB user password`)", path, n, user)
		}
		if _, twice := users[user]; twice {
			// Which line would hold? An edit that added a user again
			// instead of changing the line must not leave the old
			// password working.
			return nil, fmt.Errorf("htpasswd %s line %d: user %q is on an earlier line too", path, n, user)
		}
		users[user] = []byte(hash)
	}
	return users, sc.Err()
}

// Verify reports whether user's password is pass, re-reading the file
// first when it changed.
func (h *Htpasswd) Verify(user, pass string) bool {
	mac := hmac.New(sha256.New, h.key)
	mac.Write([]byte(pass))
	var sum [32]byte
	mac.Sum(sum[:0])
	h.mu.Lock()
	_ = h.reload(false)
	hash, ok := h.users[user]
	seen, cached := h.verified[user]
	h.mu.Unlock()
	if !ok {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(pass))
		return false
	}
	if cached && hmac.Equal(seen[:], sum[:]) {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return false
	}
	h.mu.Lock()
	// Only if the file was not re-read meanwhile (the hash still stands).
	if cur, still := h.users[user]; still && string(cur) == string(hash) && h.verified != nil {
		h.verified[user] = sum
	}
	h.mu.Unlock()
	return true
}

// Exists reports whether user is in the file as it is now.
func (h *Htpasswd) Exists(user string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_ = h.reload(false)
	_, ok := h.users[user]
	return ok
}
