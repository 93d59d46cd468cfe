package sqlmeta_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// packColumns are files and labels columns: json.Marshal's layout (read
// without encoding/json) and everything else a column could hold, read by
// json.Unmarshal.
var packColumns = []string{
	`[]`, `{}`, `null`, ``, `[`, `{`, `]`, `}`,
	`[{"name":"rules.yaml","digest":"sha256:abc","size":3400,"mediaType":"application/vnd.packreg.pack.file.v1"}]`,
	`[{"name":"a","digest":"d","size":0,"mediaType":"m"},{"name":"b","digest":"e","size":-7,"mediaType":""}]`,
	`[{"name":"a","digest":"d","size":9223372036854775807,"mediaType":"m"}]`,
	`[{"name":"a","digest":"d","size":9223372036854775808,"mediaType":"m"}]`,
	`[{"name":"a","digest":"d","size":012,"mediaType":"m"}]`,
	`[{"name":"a","digest":"d","size":-0,"mediaType":"m"}]`,
	`[{"name":"a","digest":"d","size":1.5,"mediaType":"m"}]`,
	`[{"name":"a","digest":"d","size":1e3,"mediaType":"m"}]`,
	`[{"name":"a","digest":"d","size":+1,"mediaType":"m"}]`,
	`[{"name":"a\u003cb\"c\\d","digest":"d","size":1,"mediaType":"m"}]`,
	`[{"name":"été","digest":"d","size":1,"mediaType":"m"}]`,
	"[{\"name\":\"\xff\",\"digest\":\"d\",\"size\":1,\"mediaType\":\"m\"}]",
	`[{"digest":"d","name":"a","size":1,"mediaType":"m"}]`,
	`[ {"name":"a","digest":"d","size":1,"mediaType":"m"} ]`,
	`[{"name":"a","digest":"d","size":1,"mediaType":"m"},]`,
	`[{"name":"a","digest":"d","size":1,"mediaType":"m"}]x`,
	`[{"name":"a","digest":"d","size":1,"mediaType":"m"}`,
	`[{"name":"a","digest":"d","size":1,"mediaType":"m","extra":1}]`,
	`[{"NAME":"a","digest":"d","size":1,"mediaType":"m"}]`,
	`{"tier":"gold"}`, `{"a":"1","b":"","c":"x:y"}`, `{"a":"1","a":"2"}`,
	`{"a":"1",}`, `{"a":1}`, `{"a\u0041":"b"}`, `{"k":"v"}}`, `{ "k": "v" }`, `{"":""}`,
}

// TestDecodePackColumns holds the reading of the files and labels columns
// to json.Unmarshal's result, or its error, on every column above.
func TestDecodePackColumns(t *testing.T) {
	for _, col := range packColumns {
		checkDecode(t, col)
	}
}

// TestDecodePackColumnsAllocations: json.Marshal's layout is read without
// encoding/json, the file names and digests sharing the column's memory
// (through encoding/json: 12 allocations for one file, 2 for "{}").
func TestDecodePackColumnsAllocations(t *testing.T) {
	files := packColumns[8]
	if n := testing.AllocsPerRun(100, func() { _, _ = sqlmeta.DecodeFiles(files) }); n != 1 {
		t.Errorf("decoding %s: %v allocations, want 1 (the slice)", files, n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = sqlmeta.DecodeLabels("{}") }); n != 0 {
		t.Errorf(`decoding {}: %v allocations, want 0`, n)
	}
}

// FuzzDecodePackColumns holds the reading of the columns to json.Unmarshal
// on any text.
func FuzzDecodePackColumns(f *testing.F) {
	for _, col := range packColumns {
		f.Add(col)
	}
	f.Fuzz(func(t *testing.T, col string) {
		checkDecode(t, col)
	})
}

// checkDecode compares the reading of col as a files and as a labels
// column with json.Unmarshal's.
func checkDecode(t *testing.T, col string) {
	t.Helper()
	var wantFiles []storage.PackFile
	wantErr := json.Unmarshal([]byte(col), &wantFiles)
	files, err := sqlmeta.DecodeFiles(col)
	if (err != nil) != (wantErr != nil) || err == nil && !reflect.DeepEqual(files, wantFiles) {
		t.Errorf("files %q: %#v, %v; json.Unmarshal: %#v, %v", col, files, err, wantFiles, wantErr)
	}
	var wantLabels map[string]string
	wantErr = json.Unmarshal([]byte(col), &wantLabels)
	if len(wantLabels) == 0 {
		wantLabels = nil
	}
	labels, err := sqlmeta.DecodeLabels(col)
	if (err != nil) != (wantErr != nil) || err == nil && !reflect.DeepEqual(labels, wantLabels) {
		t.Errorf("labels %q: %#v, %v; json.Unmarshal: %#v, %v", col, labels, err, wantLabels, wantErr)
	}
}
