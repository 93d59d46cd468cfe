package main

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzDecodeConfig: a config file the strict decoder accepts and that
// validates prints (`packreg config print`) as a valid config file that
// decodes, strictly and onto nothing, to the same configuration, secrets
// redacted. Seeds are in testdata/fuzz; `go test` runs them as ordinary
// tests and `make fuzz-short` fuzzes briefly.
func FuzzDecodeConfig(f *testing.F) {
	f.Add([]byte("addr: 127.0.0.1:6000\nregistry: {upload_ttl: 90m}\n"))
	f.Fuzz(func(t *testing.T, file []byte) {
		c := DefaultConfig()
		if decodeConfig(bytes.NewReader(file), &c) != nil || c.Resolve() != nil || c.Validate() != nil {
			return
		}
		out, err := c.YAML()
		if err != nil {
			t.Fatalf("config print of %q: %v", file, err)
		}
		var back Config
		if err := decodeConfig(bytes.NewReader(out), &back); err != nil {
			t.Fatalf("config print of %q is\n%s\nwhich does not decode: %v", file, out, err)
		}
		want := c.Redacted()
		emptyIsNil(reflect.ValueOf(&want).Elem())
		emptyIsNil(reflect.ValueOf(&back).Elem())
		if !reflect.DeepEqual(back, want) {
			t.Fatalf("config print of %q is\n%s\nwhich decodes to\n%+v\nnot\n%+v", file, out, back, want)
		}
		if err := back.Resolve(); err != nil {
			t.Fatalf("config print\n%s\ndoes not resolve: %v", out, err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("config print\n%s\nis not valid: %v", out, err)
		}
	})
}

// emptyIsNil makes every empty slice and map under v nil: YAML prints
// both as [] or {}, and they mean the same.
func emptyIsNil(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			emptyIsNil(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Field(i).CanSet() {
				emptyIsNil(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			v.SetZero()
		} else if v.Kind() == reflect.Slice {
			for i := range v.Len() {
				emptyIsNil(v.Index(i))
			}
		}
	}
}
