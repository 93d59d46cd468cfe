package apierr

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Go's decoder matches keys to struct fields case-insensitively, with
// Unicode folding: {"dryrun":true} sets dryRun, and DisallowUnknownFields
// lets it through. Clients in other languages, the OpenAPI document and
// the docs spell every field one way, so a key spelt otherwise is a typo
// to refuse, not a field. exactKeys walks a body the decoder accepted
// beside the type it was decoded into and finds such keys.

// exactKeys reports a key of b, at any depth, that names a field of v's
// type in another case. Values read by their own UnmarshalJSON (or
// UnmarshalText), interfaces and map keys are free.
func exactKeys(b []byte, v any) error {
	return walkKeys(json.NewDecoder(bytes.NewReader(b)), reflect.TypeOf(v))
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// walkKeys reads one value decoded into t (nil: free).
func walkKeys(dec *json.Decoder, t reflect.Type) error {
	t = checked(t)
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for dec.More() {
			if err := walkKeys(dec, elem); err != nil {
				return err
			}
		}
	case json.Delim('{'):
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		} else if t != nil && t.Kind() == reflect.Map {
			elem = t.Elem()
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := tok.(string)
			ft := elem
			if fields != nil {
				var ok bool
				if ft, ok = fields[key]; !ok {
					for name := range fields {
						if strings.EqualFold(name, key) {
							return fmt.Errorf("json: unknown field %q (the field is %q: names are case-sensitive)", Clip(key), name)
						}
					}
				}
			}
			if err := walkKeys(dec, ft); err != nil {
				return err
			}
		}
	default:
		return nil
	}
	_, err = dec.Token() // the closing ']' or '}'
	return err
}

// checked is the type whose keys walkKeys checks for a value decoded into
// t: pointers followed; nil when the value reads itself or is free.
func checked(t reflect.Type) reflect.Type {
	for t != nil {
		if t.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) ||
			reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
			return nil
		}
		switch t.Kind() {
		case reflect.Pointer:
			t = t.Elem()
		case reflect.Interface:
			return nil
		default:
			return t
		}
	}
	return nil
}

// jsonFields maps the JSON names of struct t's fields, as encoding/json
// names them, to their types; fields of untagged embedded structs are
// promoted unless a field of t has the name.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	for _, et := range embedded {
		for name, ft := range jsonFields(et) {
			if _, ok := out[name]; !ok {
				out[name] = ft
			}
		}
	}
	return out
}
