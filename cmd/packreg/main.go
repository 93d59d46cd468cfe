package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// version is set with -ldflags "-X main.version=v1.2.3"; when empty the
// module version or VCS revision from the build info is used.
var version string

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `packreg: an OCI distribution v1.1 registry for packs

Usage:
  packreg serve [flags]          run the registry (see packreg serve -h)
  packreg config print [flags]   print the effective config as YAML, secrets redacted
  packreg keys add|list|retire|revoke|signed   manage the trusted keys of a running server
  packreg verify NAME:VERSION    check a version's signatures; exit 1 when it fails its policy
  packreg pack publish|list|show|deprecate|archive|restore   publish and manage packs (packreg pack help)
  packreg audit list|verify      read the audit trail and check its hash chain
  packreg mirror add|list|sync|status   manage mirrors and upstreams (packreg mirror help)
  packreg parity [--mirror ID]   compare mirrors with this registry; exit 1 when out of parity
  packreg export -o FILE.tar|DIR/   export a signed offline bundle (packreg export -h)
  packreg import FILE.tar|DIR    import an offline bundle, checked whole first (packreg import -h)
  packreg compliance [--failing] [--json|--csv]   the registry's compliance; exit 1 when anything fails
  packreg gc [--dry-run] | runs   collect garbage now (or list what would go), and past runs
  packreg retention [--dry-run] | runs   apply the retention rules now (or list what they would do), and past runs
  packreg scrub                  re-hash every stored blob now and list the ones found bad
  packreg version                print the version
`

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		f := newConfigFlags("packreg serve", stderr)
		c, err := f.config(args[1:])
		if err != nil {
			return flagError(stderr, err)
		}
		lw := newLogWriter(stderr)
		defer lw.Close() // after serve has drained and its last line is out
		log, err := newLogger(lw, c.Log)
		if err != nil {
			fmt.Fprintln(stderr, "packreg:", err)
			return 1
		}
		if err := serve(ctx, c, log); err != nil {
			var se *startupError
			if errors.As(err, &se) {
				// One line that says what to fix, not a stack of causes.
				log.Error("cannot start", "err", err)
				return 1
			}
			log.Error("serve failed", "err", err)
			return 1
		}
		return 0
	case "config":
		if len(args) < 2 || args[1] != "print" {
			fmt.Fprint(stderr, "Usage: packreg config print [serve flags]\n")
			return 2
		}
		f := newConfigFlags("packreg config print", stderr)
		c, err := f.config(args[2:])
		if err != nil {
			return flagError(stderr, err)
		}
		b, err := c.YAML()
		if err != nil {
			fmt.Fprintln(stderr, "packreg:", err)
			return 1
		}
		_, _ = stdout.Write(b)
		return 0
	case "keys":
		return runKeys(ctx, args[1:], os.Stdin, stdout, stderr)
	case "verify":
		return runVerify(ctx, args[1:], stdout, stderr)
	case "pack":
		return runPack(ctx, args[1:], stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], stdout, stderr)
	case "mirror":
		return runMirror(ctx, args[1:], os.Stdin, stdout, stderr)
	case "parity":
		return runParity(ctx, args[1:], stdout, stderr)
	case "export":
		return runExport(ctx, args[1:], stdout, stderr)
	case "import":
		return runImport(ctx, args[1:], stdout, stderr)
	case "compliance":
		return runCompliance(ctx, args[1:], stdout, stderr)
	case "gc":
		return runGC(ctx, args[1:], stdout, stderr)
	case "retention":
		return runRetention(ctx, args[1:], stdout, stderr)
	case "scrub":
		return runScrub(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "packreg", buildVersion())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "packreg: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func flagError(stderr io.Writer, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "packreg:", err)
	return 2
}

// buildVersion is the -ldflags version, else the module version, else the
// VCS revision, else "devel".
func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return "devel-" + rev + dirty
	}
	return "devel"
}
