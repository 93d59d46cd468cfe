package apierr

import (
	"encoding/json"
	"fmt"
	"io"
)

// Streamer is a value that JSON writes in parts: a page of many items,
// whose whole encoding (the Encoder marshals a value whole before its one
// Write, into a buffer it grows by doubling and its pool then keeps) was
// 2.8 MB of heap for a 1,000-version packs page, the packs suite's peak
// RSS in the bench. StreamJSON writes to w the compact
// encoding encoding/json gives the value, byte for byte: its punctuation
// itself, each part with enc.Encode (whose trailing newline JSON drops).
type Streamer interface {
	StreamJSON(w io.Writer, enc *json.Encoder) error
}

// StreamArray writes items as encoding/json encodes a slice (nil is
// null), one item at a time.
func StreamArray[T any](w io.Writer, enc *json.Encoder, items []T) error {
	if items == nil {
		_, err := io.WriteString(w, "null")
		return err
	}
	if _, err := io.WriteString(w, "["); err != nil {
		return err
	}
	for i := range items {
		if i > 0 {
			if _, err := io.WriteString(w, ","); err != nil {
				return err
			}
		}
		// A pointer, not the item: boxing a struct copies it.
		if err := enc.Encode(&items[i]); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "]")
	return err
}

// stream writes s through the indenter. A part that fails to encode after
// some of the answer has reached the client cuts the connection, with the
// cause in the server's error log (net/http logs a handler's panic): a
// client then reads a broken answer, never a short page that looks whole.
// Before that, nothing is written, as for a value that is not streamed;
// a client gone is no failure of the value.
func stream(in *indenter, s Streamer) {
	err := s.StreamJSON(in, json.NewEncoder(in))
	switch {
	case err == nil:
		_ = in.finish()
	case in.wrote && in.err == nil:
		panic(fmt.Errorf("apierr: the answer failed midway: %w", err))
	}
}
