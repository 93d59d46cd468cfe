package apierr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// The one reading of request bodies for every /api/v1 handler. Write maps
// both sentinels: ErrBody to 400 BAD_REQUEST, ErrBodyTooLarge to 413
// TOO_LARGE; an API with codes of its own (attest) maps them first.
var (
	// ErrBody: the body could not be read, or is not exactly one JSON
	// value of the expected shape.
	ErrBody = errors.New("request body")
	// ErrBodyTooLarge: the body is longer than the route accepts.
	ErrBodyTooLarge = errors.New("request body too large")
)

// ReadBody reads a whole body of at most max bytes; it stops reading at
// max+1, so an endless body costs no more than that.
func ReadBody(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb):
		return nil, err // a server-wide cap: Write answers it
	case err != nil:
		return nil, fmt.Errorf("%w: reading it: %v", ErrBody, err)
	case int64(len(b)) > max:
		return nil, fmt.Errorf("%w: over %d bytes", ErrBodyTooLarge, max)
	}
	return b, nil
}

// DecodeJSON reads a body of at most max bytes into v strictly: unknown
// fields are errors (a typo like "notAfer" is not silently ignored), keys
// spelt in another case than their field's too (keys.go), and so
// is anything after the one JSON value, even a lone "}" or "]" that a
// json.Decoder's More would not see.
func DecodeJSON(r io.Reader, v any, max int64) error {
	_, err := decode(r, v, max, false)
	return err
}

// DecodeOptionalJSON is DecodeJSON for a body that may be left out:
// empty (or white space only) leaves v alone and reports false.
func DecodeOptionalJSON(r io.Reader, v any, max int64) (bool, error) {
	return decode(r, v, max, true)
}

func decode(r io.Reader, v any, max int64, optional bool) (bool, error) {
	b, err := ReadBody(r, max)
	if err != nil {
		return false, err
	}
	if optional && len(bytes.TrimSpace(b)) == 0 {
		return false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return false, fmt.Errorf("%w: %s", ErrBody, Clip(err.Error()))
	}
	if err := exactKeys(b, v); err != nil {
		return false, fmt.Errorf("%w: %s", ErrBody, err)
	}
	// One value: what follows it would be read by no one. Token, not More:
	// More reports false before a stray "}" or "]".
	if _, err := dec.Token(); err != io.EOF {
		return false, fmt.Errorf("%w: data after the JSON value", ErrBody)
	}
	return true, nil
}
