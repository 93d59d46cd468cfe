// Command s3fault runs the s3fault proxy as a process, for black-box tests
// (conformance imports nothing of packreg, so it starts this binary the
// way it starts packreg):
//
//	s3fault -target http://127.0.0.1:7070 [-listen 127.0.0.1:0] [-seed N]
//	        [-reject F] [-lose F] [-cut F] [-cut-request F] [-methods GET,PUT]
//
// It prints one line, "listening ADDR seed N", once it accepts
// connections, and serves until SIGTERM or SIGINT. Besides the proxied S3
// API it answers two control paths, which no bucket name can shadow:
//
//	GET /-/stats    the s3fault.Stats so far, as JSON
//	PUT /-/faults   new faults from now on: {"reject":0.1,"lose":0,"cut":0,
//	                "cut_request":0,"methods":["PUT"]}; {} turns them off
//
// It imports only s3fault and the standard library.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/packreg/packreg/storage/s3/s3fault"
)

// faults is the JSON form of s3fault.Faults (Match cannot travel).
type faults struct {
	Reject     float64  `json:"reject"`
	Lose       float64  `json:"lose"`
	Cut        float64  `json:"cut"`
	CutRequest float64  `json:"cut_request"`
	Methods    []string `json:"methods"`
}

func (f faults) s3fault() s3fault.Faults {
	return s3fault.Faults{Reject: f.Reject, Lose: f.Lose, Cut: f.Cut, CutRequest: f.CutRequest, Methods: f.Methods}
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "s3fault:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("s3fault", flag.ContinueOnError)
	target := fs.String("target", "", "S3 endpoint `URL` to proxy (http://host:port)")
	listen := fs.String("listen", "127.0.0.1:0", "listen `address`")
	seed := fs.Uint64("seed", 0, "fault generator seed (0: from the clock); printed, so a run can be replayed")
	var f faults
	fs.Float64Var(&f.Reject, "reject", 0, "`fraction` of requests answered 500/503 without forwarding")
	fs.Float64Var(&f.Lose, "lose", 0, "`fraction` of requests forwarded, then answered 500")
	fs.Float64Var(&f.Cut, "cut", 0, "`fraction` of responses cut halfway")
	fs.Float64Var(&f.CutRequest, "cut-request", 0, "`fraction` of request bodies cut halfway")
	methods := fs.String("methods", "", "comma-separated HTTP `methods` that get faults (default all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *methods != "" {
		f.Methods = strings.Split(*methods, ",")
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	p, err := s3fault.New(*target, f.s3fault(), *seed)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /-/stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(p.Stats())
	})
	mux.HandleFunc("PUT /-/faults", func(w http.ResponseWriter, r *http.Request) {
		var nf faults
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&nf); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := p.SetFaults(nf.s3fault()); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("/", p)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("listening %s seed %d\n", ln.Addr(), *seed)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
