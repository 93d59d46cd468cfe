# packreg: build, test, benchmark, run.
#
#   make build    bin/packreg
#   make test     everything, on a fresh machine too: installs the pinned
#                 clients (.ci/tools.sh), starts PostgreSQL and S3 on loopback,
#                 runs go vet, a gofmt check and every test with CI=true (nothing skipped),
#                 then test-race, stops the services it started, then runs
#                 fuzz-short
#   make test-go  go vet, gofmt -l + go test only, with whatever tools and services
#                 this shell has (missing ones skip unless CI is set)
#   make test-race  go test -race over every package but the slowest under
#                 it (RACE_SKIP); make test runs it after test-go
#   make test-race-conformance  the conformance suite against a packreg
#                 built with -race (every server and CLI run it starts; any
#                 race report fails it): not in make test (~10 min); run it
#                 inside bash .ci/with-services.sh
#   make fuzz-short  every native fuzz target (found by .ci/fuzz.sh, never
#                 listed by hand) for FUZZTIME each (default 3s)
#   make bench    benchmarks on disk and on S3 + PostgreSQL, next to
#                 Distribution v3.1.2, printing figures (BENCHFLAGS=...)
#   make bench-smoke  the bench program at tiny sizes over every suite, both
#                 backends and Distribution, with the services (.ci/run runs
#                 it after make test): exits 1 when a row FAILED or a part
#                 was skipped; its figures mean nothing
#   make image    the container image as an OCI layout in $(IMAGE_DIR): a
#                 static binary (CGO_ENABLED=0), non-root user, no Docker;
#                 push it with: crane push bin/packreg-oci REGISTRY/packreg:TAG
#   make serve    run a registry on 127.0.0.1:5000 with data in ./packreg-data
#                 (extra flags: make serve ARGS='--log-format json')

GO      ?= go
GOFMT   ?= $(dir $(shell command -v $(GO)))gofmt
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X main.version=$(VERSION)
# The whole suite runs in a few minutes on 2 cores; the timeout only stops a
# hung test from hanging CI.
TEST_TIMEOUT ?= 25m
TESTFLAGS    ?=
# The packages test-race leaves out: the conformance suite (real clients)
# and the SQL stores' suites take ~4-6 min each under the race detector on
# 2 cores, and their concurrency is the database's.
RACE_SKIP    ?= /conformance$$|/storage/sqlite$$|/storage/postgres$$
# How long fuzz-short fuzzes each target (about 20 of them, one at a time).
FUZZTIME     ?= 3s
BENCHFLAGS   ?=
ARGS         ?=
# Where make image writes the OCI layout, and for which architecture.
IMAGE_DIR    ?= bin/packreg-oci
IMAGE_ARCH   ?= $(shell $(GO) env GOARCH)

# The pinned clients live in $(go env GOPATH)/bin.
export PATH := $(shell $(GO) env GOPATH)/bin:$(PATH)

.PHONY: build image test test-go test-race test-race-conformance fuzz-short vet bench bench-run bench-smoke bench-smoke-run serve clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/packreg ./cmd/packreg

# A static, stripped binary, then the image around it (internal/tools/mkimage,
# go-containerregistry): only Go is needed.
image:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -ldflags "$(LDFLAGS) -s -w" -o bin/image/packreg ./cmd/packreg
	$(GO) run ./internal/tools/mkimage -binary bin/image/packreg -out $(IMAGE_DIR) -version $(VERSION) -arch $(IMAGE_ARCH)

# gofmt too: an unformatted file once landed with every test green.
vet:
	$(GO) vet ./...
	@out=$$($(GOFMT) -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Fuzzing needs no services, so it runs after they are stopped.
test:
	bash .ci/with-services.sh $(MAKE) --no-print-directory test-go test-race
	$(MAKE) --no-print-directory fuzz-short

test-go: vet
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(TESTFLAGS) ./...

# The tests again under the race detector: a data race seldom fails a test
# without it (it found three races that plain runs never showed).
test-race:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(TESTFLAGS) $$($(GO) list ./... | grep -vE '$(RACE_SKIP)')

# The suite's servers are race-built; the suite itself runs plainly (its
# own concurrency is processes and sockets).
test-race-conformance:
	PACKREG_CONFORMANCE_RACE=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(TESTFLAGS) ./conformance/

# go test -fuzz takes one target per run; .ci/fuzz.sh finds them all.
fuzz-short:
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash .ci/fuzz.sh

# Go benchmarks of every package that has some, then the registry-level
# bench program (./bench: the real binary over loopback, disk and S3 +
# PostgreSQL, each next to CNCF Distribution on the same storage).
# make bench BENCHFLAGS=-quick for a short run (CI's pass/fail run is
# make bench-smoke); BENCHFLAGS='-markdown BENCH.md' rewrites the committed
# report (README, Benchmarks).
bench: build
	bash .ci/with-services.sh $(MAKE) --no-print-directory bench-run

bench-run:
	@pkgs=$$(grep -rlE --include='*_test.go' '^func Benchmark' . | xargs -r -n1 dirname | sort -u); \
	echo "== go test -bench over: $$pkgs"; \
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 60m $$pkgs
	$(GO) run ./bench -binary bin/packreg $(BENCHFLAGS)

# CI's check that the bench program still runs (and what it drives still
# answers): each request of every row, once, in a couple of minutes.
bench-smoke: build
	bash .ci/with-services.sh $(MAKE) --no-print-directory bench-smoke-run

bench-smoke-run:
	$(GO) run ./bench -binary bin/packreg -smoke $(BENCHFLAGS)

serve:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/packreg serve $(ARGS)

clean:
	rm -rf bin conformance/results
