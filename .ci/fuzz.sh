#!/usr/bin/env bash
# Fuzzes every native fuzz target briefly (what `make fuzz-short` and so
# `make test` run; FUZZ=regexp keeps the targets whose file:name matches). `go test -fuzz` takes one target of one package per
# run, so the targets are found here, every `func FuzzXxx` in a _test.go
# file, and never listed by hand: a new target cannot be forgotten. Each
# runs for FUZZTIME (default 3s); a failure is reported with its input,
# which go writes under the package's testdata/fuzz/FuzzXxx to be kept as
# a seed, and the script goes on with the others and exits 1 at the end.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-3s}

targets=$(grep -rHoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' . | sed 's/:func /:/' | sort | grep -E -- "${FUZZ:-.}")
if [[ -z $targets ]]; then
  echo "fuzz: no fuzz targets found (FUZZ=${FUZZ:-})" >&2
  exit 1
fi

failed=()
n=0
while IFS=: read -r file name; do
  pkg=$(dirname "$file")
  n=$((n + 1))
  echo "== fuzz $pkg $name ($FUZZTIME)"
  # Minimising a crasher is bounded so that a failure cannot stall CI;
  # go vet has run already (make test-go).
  if ! "$GO" test -vet=off -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 10s "$pkg" </dev/null; then
    failed+=("$pkg $name")
  fi
done <<<"$targets"

if ((${#failed[@]} > 0)); then
  printf 'fuzz: FAILED %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "== fuzz: $n targets passed"
