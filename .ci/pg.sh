#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster for the metadata-store tests and
# prints the export line for PACKREG_TEST_POSTGRES. Idempotent: an already
# running cluster under the same directory is reused, so CI and developers can
# call it repeatedly.
#
#   eval "$(bash .ci/pg.sh [DIR])"     # DIR defaults to /tmp/packreg-ci/pg
#
# Port: $PACKREG_PG_PORT (default 55432). Trust auth, listening on 127.0.0.1
# only: never point this at anything but a scratch directory.
set -euo pipefail

DIR=${1:-/tmp/packreg-ci/pg}
PORT=${PACKREG_PG_PORT:-55432}
PGB=${PACKREG_PG_BIN:-/usr/lib/postgresql/15/bin}
URL_BASE="postgres://postgres@127.0.0.1:${PORT}"

log() { echo "pg.sh: $*" >&2; }

if [[ ! -x $PGB/initdb ]]; then
  log "PostgreSQL 15 missing at $PGB; installing"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

# The server refuses to run as root, so everything server-side runs as the
# postgres user; when we already are that user, run commands directly.
as_pg() {
  if [[ $(id -un) == postgres ]]; then bash -c "$1"; else su postgres -s /bin/bash -c "$1"; fi
}

if [[ $(id -un) == root ]]; then
  install -d -o postgres -g postgres "$DIR"
else
  mkdir -p "$DIR"
fi

if [[ ! -f $DIR/data/PG_VERSION ]]; then
  log "initdb in $DIR/data"
  as_pg "'$PGB/initdb' -D '$DIR/data' -U postgres --auth=trust -E UTF8 >'$DIR/initdb.log' 2>&1"
fi

PSQL=$PGB/psql
[[ -x $PSQL ]] || PSQL=psql
ready() { "$PSQL" "$URL_BASE/postgres?sslmode=disable" -qAtc 'select 1' >/dev/null 2>&1; }

if ready; then
  log "already running in $DIR/data"
else
  # A server that was killed (not shut down) leaves postmaster.pid behind,
  # and a pid that is dead or a zombie makes pg_ctl believe it still runs:
  # clear it, or the start below is skipped or refused.
  pidfile=$DIR/data/postmaster.pid
  if [[ -f $pidfile ]]; then
    pid=$(head -n1 "$pidfile")
    state=$(ps -o stat= -p "$pid" 2>/dev/null || true)
    comm=$(ps -o comm= -p "$pid" 2>/dev/null || true)
    if [[ -z $state || $state == Z* || $comm != postgres* ]]; then
      log "removing the stale $pidfile (pid $pid is gone)"
      rm -f "$pidfile"
    else
      as_pg "'$PGB/pg_ctl' -D '$DIR/data' -m immediate -w -t 10 stop" >&2 || true
    fi
  fi
  # fsync stays on: the tests exercise the same durability the registry uses.
  as_pg "'$PGB/pg_ctl' -D '$DIR/data' -l '$DIR/log' -w -t 60 \
    -o \"-p $PORT -k '$DIR' -c listen_addresses=127.0.0.1 -c max_connections=200\" start" >&2
fi

for _ in $(seq 1 30); do
  ready && break
  sleep 1
done
ready || { log "PostgreSQL does not answer on $URL_BASE (log: $DIR/log)"; exit 1; }
if [[ $("$PSQL" "$URL_BASE/postgres?sslmode=disable" -qAtc "select count(*) from pg_database where datname='packreg'") != 1 ]]; then
  # A natural-language default collation (ICU en-US sorts "a" before "A"
  # and ignores punctuation) so the tests prove the store orders names byte
  # by byte on its own, as production databases are rarely in the C locale.
  "$PSQL" "$URL_BASE/postgres?sslmode=disable" -qc \
    "create database packreg template template0 locale_provider icu icu_locale 'en-US' locale 'C.UTF-8'" >&2 ||
    "$PSQL" "$URL_BASE/postgres?sslmode=disable" -qc 'create database packreg' >&2
fi

echo "export PACKREG_TEST_POSTGRES=${URL_BASE}/packreg?sslmode=disable"
