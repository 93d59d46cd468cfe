package storage

import "errors"

// An unavailableError is ErrUnavailable with a reason a client may read:
// what it waits for, or what to do again. Other ErrUnavailable texts (a
// backend's, with hosts, keys and paths) stay in the server's log.
type unavailableError struct {
	reason string
	err    error // the cause, for the log; may be nil
}

func (e *unavailableError) Error() string {
	if e.err == nil {
		return e.reason + ": " + ErrUnavailable.Error()
	}
	return e.reason + ": " + ErrUnavailable.Error() + ": " + e.err.Error()
}

func (e *unavailableError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrUnavailable}
	}
	return []error{ErrUnavailable, e.err}
}

// Unavailable is ErrUnavailable (503, Retry-After) whose answer says
// reason, which must name nothing the client should not see. cause, if
// not nil, is logged and matched by errors.Is, not answered.
func Unavailable(reason string, cause error) error {
	return &unavailableError{reason: reason, err: cause}
}

// UnavailableMessage is what a client is told of err, an ErrUnavailable:
// the reason given to Unavailable, or a generic text.
func UnavailableMessage(err error) string {
	if u, ok := errors.AsType[*unavailableError](err); ok {
		return u.reason
	}
	return "storage temporarily unavailable"
}
