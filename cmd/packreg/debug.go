package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"
)

// DebugConfig is the `debug:` section: Go's pprof profiles for operators
// chasing CPU or contention, off by default. They are served on a listener
// of their own that must be loopback, never on the main address: a profile
// shows the process's internals (its command line among them) and a CPU
// profile costs CPU while it runs, so it is for whoever is on the machine
// (or at the end of an SSH tunnel), not for the registry's clients.
type DebugConfig struct {
	// PprofListen is the loopback HOST:PORT serving /debug/pprof/; empty
	// (the default) serves nothing.
	PprofListen string `yaml:"pprof_listen"`
	// BlockProfileRate is runtime.SetBlockProfileRate's rate: on average
	// one blocking event per this many nanoseconds blocked is sampled;
	// 0 (the default) records none, 1 every one.
	BlockProfileRate int `yaml:"block_profile_rate"`
	// MutexProfileFraction is runtime.SetMutexProfileFraction's: on average
	// 1/n of mutex contention events are reported; 0 (the default) none.
	MutexProfileFraction int `yaml:"mutex_profile_fraction"`
}

func (c DebugConfig) validate() error {
	var errs []error
	if c.PprofListen != "" {
		host, _, err := net.SplitHostPort(c.PprofListen)
		if err != nil {
			errs = append(errs, fmt.Errorf("debug.pprof_listen %q: want HOST:PORT: %v", c.PprofListen, err))
		} else if !isLoopback(host) {
			errs = append(errs, fmt.Errorf("debug.pprof_listen %q: must be a loopback address (127.0.0.1, ::1 or localhost): profiles are for the operator on the machine", c.PprofListen))
		}
	}
	if c.BlockProfileRate < 0 {
		errs = append(errs, fmt.Errorf("debug.block_profile_rate must be >= 0, got %d", c.BlockProfileRate))
	}
	if c.MutexProfileFraction < 0 {
		errs = append(errs, fmt.Errorf("debug.mutex_profile_fraction must be >= 0, got %d", c.MutexProfileFraction))
	}
	if (c.BlockProfileRate > 0 || c.MutexProfileFraction > 0) && c.PprofListen == "" {
		// Sampling that nobody can read costs for nothing.
		errs = append(errs, errors.New("debug.block_profile_rate and debug.mutex_profile_fraction need debug.pprof_listen"))
	}
	return errors.Join(errs...)
}

// pprofHandler serves net/http/pprof's pages on a mux of its own (the
// package's init also registers them on http.DefaultServeMux, which
// packreg never serves).
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// pprofServer is the running profile listener; nil when off.
type pprofServer struct {
	srv *http.Server
	ln  net.Listener
}

// defaultMemProfileRate is the runtime's own (runtime.MemProfileRate's
// documented default): one sampled allocation per 512 KiB.
const defaultMemProfileRate = 512 * 1024

// startPprof sets the sampling rates and, when c.PprofListen is set,
// serves the profiles there until shutdown.
//
// With profiles off, heap sampling stops too: the runtime samples an
// allocation every 512 KiB by default whether or not anyone can read the
// profile, and keeps every sampled stack in a table that never shrinks
// (BuckHashSys 1.8 MB at the peak of the packs suite, about 3% of the
// server's peak RSS) after walking it through the binary's function
// tables.
func startPprof(c DebugConfig, log *slog.Logger) (*pprofServer, error) {
	if c.PprofListen == "" {
		runtime.MemProfileRate = 0
		return nil, nil
	}
	runtime.MemProfileRate = defaultMemProfileRate
	ln, err := net.Listen("tcp", c.PprofListen)
	if err != nil {
		return nil, fmt.Errorf("debug.pprof_listen: %w", err)
	}
	// Process-wide by nature: the runtime has one sampler of each.
	runtime.SetBlockProfileRate(c.BlockProfileRate)
	runtime.SetMutexProfileFraction(c.MutexProfileFraction)
	p := &pprofServer{ln: ln, srv: &http.Server{
		Handler:           pprofHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof listener", "err", err)
		}
	}()
	log.Info("pprof listening", "addr", ln.Addr().String(),
		"block_profile_rate", c.BlockProfileRate, "mutex_profile_fraction", c.MutexProfileFraction)
	return p, nil
}

// addr is where the profiles are served.
func (p *pprofServer) addr() string { return p.ln.Addr().String() }

// close stops the listener; a CPU profile in progress is cut short.
func (p *pprofServer) close() {
	if p == nil {
		return
	}
	_ = p.srv.Close()
	runtime.SetBlockProfileRate(0)
	runtime.SetMutexProfileFraction(0)
}
