package storage_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/packreg/packreg/storage"
)

// An Unavailable error is ErrUnavailable and its cause for errors.Is; a
// client is told its reason, and of any other ErrUnavailable only that
// storage is unavailable (a backend's text names hosts and keys).
func TestUnavailableTellsItsReasonOnly(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.7:5432: connection refused")
	err := fmt.Errorf("put manifest: %w", storage.Unavailable("the audit trail is busy", cause))
	if !errors.Is(err, storage.ErrUnavailable) || !errors.Is(err, cause) {
		t.Fatalf("%v: not ErrUnavailable and its cause", err)
	}
	if got := storage.UnavailableMessage(err); got != "the audit trail is busy" {
		t.Fatalf("client told %q, want the reason", got)
	}
	if !errors.Is(storage.Unavailable("r", nil), storage.ErrUnavailable) {
		t.Fatal("Unavailable without a cause is not ErrUnavailable")
	}
	plain := fmt.Errorf("s3: GET key: %w: %w", storage.ErrUnavailable, cause)
	if got := storage.UnavailableMessage(plain); got != "storage temporarily unavailable" {
		t.Fatalf("client told %q of a backend's outage, want the generic text", got)
	}
}
