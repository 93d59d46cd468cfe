# packreg: build, test, benchmark, run.
#
#   make build    bin/packreg
#   make test     go vet, then every test: unit, storage suites, OCI
#                 conformance, real clients (tools from .ci/tools.sh;
#                 S3/PostgreSQL tests need .ci/run or the PACKREG_TEST_* vars)
#   make bench    benchmarks, printing figures
#   make serve    run a registry on 127.0.0.1:5000 with data in ./packreg-data
#                 (extra flags: make serve ARGS='--log-format json')

GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X main.version=$(VERSION)
# The whole suite runs in a few minutes on 2 cores; the timeout only stops a
# hung test from hanging CI.
TEST_TIMEOUT ?= 25m
TESTFLAGS    ?=
BENCHFLAGS   ?=
ARGS         ?=

# The pinned clients live in $(go env GOPATH)/bin.
export PATH := $(shell $(GO) env GOPATH)/bin:$(PATH)

.PHONY: build test vet bench serve clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/packreg ./cmd/packreg

vet:
	$(GO) vet ./...

test: vet
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(TESTFLAGS) ./...

# Go benchmarks of every package that has some, then the registry-level
# bench program (./bench) when it is there.
bench:
	@pkgs=$$(grep -rlE --include='*_test.go' '^func Benchmark' . | xargs -r -n1 dirname | sort -u); \
	if [ -n "$$pkgs" ]; then \
		echo "== go test -bench over: $$pkgs"; \
		$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 60m $$pkgs; \
	else \
		echo "== no Go benchmarks yet"; \
	fi
	@if [ -f bench/main.go ]; then \
		echo "== go run ./bench $(BENCHFLAGS)"; \
		$(GO) run ./bench $(BENCHFLAGS); \
	fi

serve:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/packreg serve $(ARGS)

clean:
	rm -rf bin conformance/results
