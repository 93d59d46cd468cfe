#!/usr/bin/env bash
# Runs a command with everything the tests need, from a fresh clone on a
# fresh machine (Debian, root, Go on PATH): installs the pinned tools, starts
# PostgreSQL and an S3 server on loopback, exports their PACKREG_TEST_*
# variables and CI=true (so a missing tool or service fails instead of
# skipping), runs the command, and stops the services it started.
#
#   bash .ci/with-services.sh make test-go     (what `make test` does)
#
# Services already running (a developer's, or an earlier run's) are reused
# and left running; only what this script started is stopped on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "ci: $*" >&2; }

export CI=${CI:-true}
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null || { log "Go is not installed (need Go 1.26)"; exit 1; }
export PATH="$(go env GOPATH)/bin:$PATH"

# gcc: go test -race needs cgo.
if ! command -v make >/dev/null || ! command -v curl >/dev/null || ! command -v gcc >/dev/null; then
  log "installing make, curl and gcc"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make curl gcc libc6-dev >/dev/null
fi

log "tools"
bash .ci/tools.sh

PG_DIR=/tmp/packreg-ci/pg
S3_DIR=/tmp/packreg-ci/s3
PGB=${PACKREG_PG_BIN:-/usr/lib/postgresql/15/bin}
as_pg() {
  if [[ $(id -un) == postgres ]]; then bash -c "$1"; else su postgres -s /bin/bash -c "$1"; fi
}
# Answering, not just a pid file: a killed server leaves one behind.
pg_running() {
  "$PGB/psql" "postgres://postgres@127.0.0.1:${PACKREG_PG_PORT:-55432}/postgres?sslmode=disable" -qAtc 'select 1' >/dev/null 2>&1
}
s3_running() {
  [[ $(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PACKREG_S3_PORT:-7070}/health" || true) == 200 ]]
}

started_pg=false started_s3=false
pg_running || started_pg=true
s3_running || started_s3=true

cleanup() {
  local rc=$?
  if $started_s3; then
    log "stopping the S3 server"
    bash .ci/s3.sh stop "$S3_DIR" || true
  fi
  if $started_pg; then
    log "stopping PostgreSQL"
    as_pg "'$PGB/pg_ctl' -D '$PG_DIR/data' -m fast -w stop" >/dev/null 2>&1 || true
  fi
  exit "$rc"
}
trap cleanup EXIT

log "services"
# Assigned first: eval "$(...)" would swallow a failing script and run the
# tests without their services.
pg_env=$(bash .ci/pg.sh "$PG_DIR")
s3_env=$(bash .ci/s3.sh "$S3_DIR")
eval "$pg_env"
eval "$s3_env"

log "$*"
"$@"
