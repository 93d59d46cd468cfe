package attest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// ErrInvalid is wrapped by every refusal of bad input (HTTP 400).
var ErrInvalid = errors.New("invalid request")

// ErrKeyState is a key state change that is not allowed (HTTP 409):
// retiring a revoked key, say.
var ErrKeyState = errors.New("key state does not allow this")

// KeyInput is a key to add to the ring.
type KeyInput struct {
	Name string
	PEM  string
	// NotBefore and NotAfter bound the window in which a recorded
	// signature counts; zero means unbounded. A key added after a
	// signature was pushed therefore vouches for it, unless NotBefore
	// says otherwise.
	NotBefore, NotAfter time.Time
	// Usage is what the key is trusted for (storage.KeyUsage*); none
	// means signatures, what every key meant before usages existed.
	Usage []string
}

// checkUsage returns the usages of a key to add: known ones, each once,
// signatures when none is given.
func checkUsage(in []string) ([]string, error) {
	if len(in) == 0 {
		return []string{storage.KeyUsageSignatures}, nil
	}
	var out []string
	for _, u := range in {
		switch {
		case u != storage.KeyUsageSignatures && u != storage.KeyUsageBundles:
			return nil, fmt.Errorf("%w: usage %q: want %q or %q", ErrInvalid, clip(u), storage.KeyUsageSignatures, storage.KeyUsageBundles)
		case slices.Contains(out, u):
			return nil, fmt.Errorf("%w: usage %q given twice", ErrInvalid, u)
		}
		out = append(out, u)
	}
	return out, nil
}

const maxKeyName = 128

func checkKeyName(n string) error {
	if n == "" || len(n) > maxKeyName {
		return fmt.Errorf("%w: key name must be 1 to %d bytes", ErrInvalid, maxKeyName)
	}
	for _, r := range n {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: key name has an unprintable character", ErrInvalid)
		}
	}
	return nil
}

// AddKey puts a key in the ring, active, and re-checks the signatures no
// key could verify so far.
func (s *Service) AddKey(ctx context.Context, in KeyInput) (*storage.Key, error) {
	if err := checkKeyName(in.Name); err != nil {
		return nil, err
	}
	if !in.NotBefore.IsZero() && !in.NotAfter.IsZero() && !in.NotBefore.Before(in.NotAfter) {
		return nil, fmt.Errorf("%w: notBefore must be before notAfter", ErrInvalid)
	}
	usage, err := checkUsage(in.Usage)
	if err != nil {
		return nil, err
	}
	pk, err := ParsePublicKey(in.PEM)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	now := s.now().UTC()
	k := &storage.Key{
		ID: pk.ID, Name: in.Name, PEM: pk.PEM, Algorithm: pk.Algorithm, State: storage.KeyActive,
		NotBefore: in.NotBefore.UTC(), NotAfter: in.NotAfter.UTC(), Usage: usage, Created: now, Updated: now,
	}
	// The key.add event is the audit record and the worker's cue to
	// re-check what no key could verify.
	if err := s.st.CreateKey(ctx, k, keyEvent(ctx, ActionKeyAdd, k)); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, fmt.Errorf("key %s or name %q is already in the key ring: %w", short(k.ID), in.Name, err)
		}
		return nil, err
	}
	return k, nil
}

// Keys lists the ring, oldest first.
func (s *Service) Keys(ctx context.Context) ([]*storage.Key, error) { return s.st.ListKeys(ctx) }

// Key returns one key of the ring.
func (s *Service) Key(ctx context.Context, id string) (*storage.Key, error) {
	return s.st.GetKey(ctx, id)
}

// RetireKey ends a key's validity now (or keeps an earlier end): what it
// signed before stays verified, what it signs from now on does not. That
// is rotation: add the new key, retire the old one.
func (s *Service) RetireKey(ctx context.Context, id string) (*storage.Key, error) {
	return s.setState(ctx, id, storage.KeyRetired)
}

// RevokeKey withdraws all trust from a key: everything it signed, before
// or after, is reported untrusted. For a key that leaked.
func (s *Service) RevokeKey(ctx context.Context, id string) (*storage.Key, error) {
	return s.setState(ctx, id, storage.KeyRevoked)
}

func (s *Service) setState(ctx context.Context, id, state string) (*storage.Key, error) {
	k, err := s.st.GetKey(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	switch {
	case k.State == state:
		return k, nil
	case k.State == storage.KeyRevoked:
		return nil, fmt.Errorf("%w: key %s is revoked", ErrKeyState, short(id))
	}
	k.State, k.Updated = state, now
	if state == storage.KeyRetired && (k.NotAfter.IsZero() || k.NotAfter.After(now)) {
		k.NotAfter = now
	}
	action := map[string]string{storage.KeyRetired: ActionKeyRetire, storage.KeyRevoked: ActionKeyRevoke}[state]
	if err := s.st.UpdateKey(ctx, k, keyEvent(ctx, action, k)); err != nil {
		return nil, err
	}
	return k, nil
}

// Actions of the events (and audit records) of key ring changes.
const (
	ActionKeyAdd    = "key.add"
	ActionKeyRetire = "key.retire"
	ActionKeyRevoke = "key.revoke"
)

// keyEvent is the outbox event of a key change, committed with it.
func keyEvent(ctx context.Context, action string, k *storage.Key) storage.Event {
	return storage.Event{Actor: registry.ActorFrom(ctx), Action: action, Target: "key:" + k.ID,
		Details: map[string]string{"name": k.Name, "algorithm": k.Algorithm, "state": k.State, "notAfter": stampOrEmpty(k.NotAfter),
			"usage": strings.Join(k.Usage, ",")}}
}

func stampOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return stamp(t)
}

// Vouched is one thing a key signed, as reported by KeySigned.
type Vouched struct {
	Repository string        `json:"repository"`
	Digest     digest.Digest `json:"digest"`
	Finding
}

// KeySigned lists what key id vouches for: every record the key verified,
// judged by the key's current state, so a team rotating keys sees which
// versions still need a signature by the new key.
func (s *Service) KeySigned(ctx context.Context, id string) ([]Vouched, error) {
	k, err := s.st.GetKey(ctx, id)
	if err != nil {
		return nil, err
	}
	recs, err := s.st.AttestRecordsByKey(ctx, id)
	if err != nil {
		return nil, err
	}
	keys := map[string]*storage.Key{id: k}
	out := []Vouched{}
	for _, r := range recs {
		if r.Status != storage.SigVerified {
			continue // the key named or failed it: it vouches for nothing there
		}
		out = append(out, Vouched{Repository: r.Repo, Digest: r.Subject, Finding: finding(r, trusted{keys: keys})})
	}
	return out, nil
}
