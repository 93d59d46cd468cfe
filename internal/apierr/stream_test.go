package apierr

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// list is a Streamer of items that fails at item fail (when fail >= 0).
type list struct {
	Items []item `json:"items"`
	fail  int
}

func (l *list) StreamJSON(w io.Writer, enc *json.Encoder) error {
	if _, err := io.WriteString(w, `{"items":`); err != nil {
		return err
	}
	items := l.Items
	if l.fail >= 0 {
		items = append(items[:l.fail:l.fail], item{Float: math.NaN()}) // the Encoder refuses NaN
	}
	if err := StreamArray(w, enc, items); err != nil {
		return err
	}
	_, err := io.WriteString(w, "}")
	return err
}

func TestStreamArrayIsTheEncoders(t *testing.T) {
	items := benchPage().Items
	items[3].Raw = json.RawMessage(` [ 1 , {} ] `)
	for name, l := range map[string]*list{
		"nil":   {fail: -1},
		"empty": {Items: []item{}, fail: -1},
		"one":   {Items: items[:1], fail: -1},
		"many":  {Items: items, fail: -1},
	} {
		t.Run(name, func(t *testing.T) {
			want := encoderLayout(t, struct {
				Items []item `json:"items"`
			}{l.Items})
			if got := jsonBody(l); string(got) != string(want) {
				t.Fatalf("streamed\n%s\nthe Encoder writes\n%s", got, want)
			}
		})
	}
}

// A streamed value that fails before any of it is written writes nothing,
// as any value JSON cannot encode.
func TestStreamFailingFirstWritesNothing(t *testing.T) {
	if got := jsonBody(&list{Items: benchPage().Items, fail: 0}); len(got) != 0 {
		t.Fatalf("wrote %q", got)
	}
}

// One that fails after part of it has gone out cuts the connection, so a
// client cannot take the part for the whole, and the cause is logged.
func TestStreamFailingMidwayCutsTheAnswer(t *testing.T) {
	l := &list{Items: benchPage().Items, fail: 900} // well past the first chunk
	var logged bytes.Buffer
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { JSON(w, 200, l) }))
	srv.Config.ErrorLog = log.New(&logged, "", 0) // read after Close, which waits for the handler
	srv.Start()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	srv.Close() // waits for the handler: its log line is written
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read %d bytes of a failed stream, error %v; want io.ErrUnexpectedEOF", len(body), err)
	}
	if len(body) == 0 {
		t.Fatal("nothing was written before the failure: the test does not test a cut")
	}
	if got := logged.String(); !strings.Contains(got, "failed midway") || !strings.Contains(got, "NaN") {
		t.Errorf("server log %.300q: want the cause", got)
	}
}
